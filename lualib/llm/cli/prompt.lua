-- llmrun prompt: one prompt, the answer streamed to stdout, the numbers
-- (tokens, TTFT, latency, cost) to stderr.
local llm = require "llm"
local cli = require "llm.cli"
local cjson = require "cjson"

local C = {}
C.summary = "send one prompt and stream the answer"
C.usage = [[
usage: llmrun prompt [-m MODEL] [-s SYSTEM] [-o KEY VALUE]... [--no-stream] [--json] TEXT|-

Sends TEXT (or stdin with -) to MODEL (default: gpt-4o-mini; the simulator
when no API key is set). The answer streams to stdout; tokens, time to
first token, latency and cost go to stderr.

  -m, --model MODEL     model, e.g. gpt-4o, sim/gpt-4o, anthropic/claude-3-5-haiku-latest
  -s, --system TEXT     system prompt
  -o KEY VALUE          request option, e.g. -o temperature 0 -o max_tokens 50
  --no-stream           wait for the whole answer
  --json                print one JSON object (text and numbers) on stdout
  -n, --no-log          do not record this call in the call log
]]

local spec = {
  ["-m"] = "model", ["--model"] = "model", ["-s"] = "system", ["--system"] = "system",
  ["-o"] = { "options", 2 }, ["--no-stream"] = true, ["--json"] = true,
  ["-n"] = true, ["--no-log"] = true,
}

--- One stderr line: "gpt-4o-mini (sim) · 12 in + 34 out tokens · TTFT 210 ms · 1.3 s · $0.000021"
function C.summary_line(r)
  local parts = { ("%s (%s%s)"):format(r.model or "?", r.provider or "?",
    r.simulated and ", simulated" or "") }
  local u = r.usage
  if u then
    parts[#parts + 1] = ("%d in + %d out tokens%s"):format(u.prompt_tokens or 0,
      u.completion_tokens or 0, (u.cached_tokens or 0) > 0 and (" (%d cached)"):format(u.cached_tokens) or "")
  end
  if r.ttft_ms then parts[#parts + 1] = ("TTFT %.0f ms"):format(r.ttft_ms) end
  if r.latency_ms then parts[#parts + 1] = ("%.2f s"):format(r.latency_ms / 1000) end
  if r.cost then parts[#parts + 1] = ("$%.6f"):format(r.cost)
  elseif r.cost == nil and r.usage then parts[#parts + 1] = "cost unknown" end
  if r.cached then parts[#parts + 1] = "cache hit (" .. r.cached .. ")" end
  return table.concat(parts, " · ")
end

function C.main(args)
  local opts, rest = cli.parse(args, spec)
  if #rest ~= 1 then cli.usage_error("expected one TEXT argument (or - for stdin)") end
  local text = rest[1]
  if text == "-" then text = io.stdin:read("a") end
  if text == "" then cli.usage_error("the prompt is empty") end
  if opts.n or opts.no_log then llm.log.off() end

  local m = llm.model(opts.model or "gpt-4o-mini")
  local req = { user = text, system = opts.system }
  for k, v in pairs(opts.options or {}) do req[k] = cli.coerce(v) end

  local r, err
  if opts.no_stream or opts.json then
    r, err = m:chat(req)
    if r and not opts.json then io.stdout:write(r.text, "\n") end
  else
    r, err = m:stream(req, { on_delta = function(d)
      io.stdout:write(d.text)
      io.stdout:flush()
    end })
    io.stdout:write("\n")
  end
  if not r then
    io.stderr:write("llmrun: ", tostring(err), "\n")
    return 1
  end
  if opts.json then
    io.stdout:write(cjson.encode {
      text = r.text, model = r.model, provider = r.provider, simulated = r.simulated,
      usage = r.usage, ttft_ms = r.ttft_ms, latency_ms = r.latency_ms,
      cost = r.cost, finish_reason = r.finish_reason, request_id = r.request_id,
    }, "\n")
  else
    io.stderr:write(C.summary_line(r), "\n")
  end
  return 0
end

return C
