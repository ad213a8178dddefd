-- The replayer alone, for load tools: llmrun tests/bench/replay_serve.lua CASSETTE SECONDS
-- prints its URL, serves for SECONDS, then prints its counters as JSON.
local server = assert(require("_llm.replay").start(assert(arg[1])))
io.stdout:write(server:url(), "\n")
io.stdout:flush()
llm.sleep(tonumber(arg[2] or "10"))
print(require("cjson").encode(server:stats()))
server:stop()
