-- One-thread throughput of llmrun's tokenizer through its Lua binding, in
-- bpe_bench's output format (ids are not hashed: "-"), for
-- scripts/bench_tokens_device.sh when it is given an llmrun binary:
--   llmrun tests/bench/tokens_bench.lua REPEATS ENCODING[,ENCODING] FILE...
local tok = require "_llm.tok"
local reps, encs = tonumber(arg[1]), arg[2]
for i = 3, #arg do
  local f = assert(io.open(arg[i], "rb"))
  local text = f:read("a")
  f:close()
  for enc in encs:gmatch("[^,]+") do
    local best, n = math.huge
    for _ = 1, reps do
      local t0 = llm.now()
      n = tok.count(text, enc)
      best = math.min(best, llm.now() - t0)
    end
    print(("%s %s %d %d %.2f -"):format(arg[i], enc, #text, n, #text / best / 1e6))
  end
end
