-- llmrun replay CASSETTE --script STRATEGY: a what-if on recorded
-- traffic (llm.whatif). To rerun a script from its recording instead:
-- LLMRUN_REPLAY=run.cassette llmrun script.lua.
local cli = require "llm.cli"

local usage = [[
usage: llmrun replay CASSETTE --script STRATEGY.lua [options]

Runs a recorded run's traffic (calls recorded with LLMRUN_RECORD or by
the proxy) through a candidate strategy and prints the before/after
report: calls, tokens and cost (exact, at today's prices), latency (from
the recorded timings), and agreement with the recorded answers. Requests
the strategy leaves as they were take their recorded outcome; changed
ones are answered by a recorded request of the same form, by the
strategy itself (a cache), or else estimated, unless --sim or --live.

A strategy file returns {name=, on_request=fn(req), on_response=fn(req,
resp), check=fn(req, resp, recorded)}; see README.md, "Record and replay".

options:
  --script FILE        the strategy (required)
  --sim                answer changed requests with the simulator
  --live               answer changed requests with the provider (costs money)
  --reprice TARGET     also price both sides as TARGET (a model, model,batch,
                       or a price table file), as `llmrun report` does
  --limit N            the first N recorded calls only
  --json               the result as JSON
  -h, --help           this help

To rerun a script against its recording (offline, through the HTTP path):
  LLMRUN_REPLAY=run.cassette llmrun script.lua
]]

local function main(args)
  local opts, rest = cli.parse(args, {
    ["--script"] = "script", ["--sim"] = true, ["--live"] = true, ["--reprice"] = "reprice",
    ["--limit"] = "limit", ["--json"] = true,
  })
  if #rest ~= 1 then cli.usage_error("one cassette expected, got %d arguments", #rest) end
  if not opts.script then
    cli.usage_error("--script STRATEGY.lua is required (to rerun a script from its recording: "
      .. "LLMRUN_REPLAY=%s llmrun script.lua)", rest[1])
  end
  if opts.sim and opts.live then cli.usage_error("--sim and --live exclude each other") end
  local limit = opts.limit and math.tointeger(tonumber(opts.limit))
  if opts.limit and (not limit or limit < 0) then cli.usage_error("--limit needs a count >= 0") end
  local whatif = require "llm.whatif"
  local strategy, serr = whatif.load_strategy(opts.script)
  if not strategy then
    io.stderr:write("llmrun replay: ", tostring(serr), "\n")
    return 1
  end
  local res, err = whatif.run(rest[1], strategy, { sim = opts.sim, live = opts.live, reprice = opts.reprice,
    limit = limit })
  if not res then
    io.stderr:write("llmrun replay: ", tostring(type(err) == "table" and err.message or err), "\n")
    return 1
  end
  io.stdout:write(opts.json and whatif.json(res) or whatif.text(res))
end

return {
  summary = "evaluate a strategy on a recorded run's traffic (--script)",
  usage = usage,
  main = main,
}
