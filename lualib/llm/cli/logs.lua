-- llmrun logs: the call log, newest last (or the runs, with --runs).
local cli = require "llm.cli"
local text = require "llm.report_text"
local untrusted = require "llm.untrusted"

local C = {}
C.summary = "show logged calls (or runs) from the call log: filter, search their text"
C.usage = [[
usage: llmrun logs [-n N] [--run ID] [--tag T] [-m MODEL] [--status S] [-q TEXT]
                   [--full] [--json]
       llmrun logs --runs [-n N] [--json]
       llmrun logs --path

Shows the last N calls (default 20; 0 for all) from the call log,
$XDG_DATA_HOME/llmrun/runs.db, by start time, oldest first: time, run,
tag, model, status, latency, time to first token, tokens, cost, cache hits
and the start of the answer.

  -n, --count N     how many (0: all)
  --run ID          only the calls of this run (an id or a unique prefix)
  --tag T           only calls with this tag (an experiment's variant)
  -m, --model M     only calls to this model
  --status S        only calls that ended so: ok, error, partial, cancelled
  -q, --query TEXT  only calls whose prompt, answer or error contains TEXT
                    (any case)
  --full            each call's whole prompt, answer and error under its line
  --runs            list runs instead: id, started, script and its arguments,
                    calls, failures, cost, working directory
  --json            one JSON object per line (JSON Lines), texts included
  --path            print the database path and exit

Logging is on by default; LLMRUN_LOG=0 or llm.log.off() turns it off.
Prompt and answer texts are logged with each call unless LLMRUN_LOG_TEXT=0
(or a model's or a call's log_text = false); API keys never are.
]]

local spec = {
  ["-n"] = "count", ["--count"] = "count", ["--run"] = "run", ["--json"] = true,
  ["--runs"] = true, ["--path"] = true, ["--tag"] = "tag", ["-m"] = "model", ["--model"] = "model",
  ["--status"] = "status", ["-q"] = "query", ["--query"] = "query", ["--full"] = true,
}

local STATUSES = { ok = true, error = true, partial = true, cancelled = true }

local function clock(t)
  if not t then return "" end
  return os.date("%Y-%m-%d %H:%M:%S", math.floor(t))
end

local function ms(v) return v and text.fmt_value(v, "ms") or "" end

local function cost(v, row)
  if v == nil then
    if row.status == "error" and not row.prompt_tokens then return "" end
    return "?"
  end
  return text.fmt_value(v, "USD")
end

-- "script.lua arg1 arg2", arguments quoted when they hold spaces.
local function script_line(r)
  local s = r.script or ""
  local ok, args = pcall(require("cjson").decode, r.args or "[]")
  if ok and type(args) == "table" then
    for _, a in ipairs(args) do
      a = tostring(a)
      s = s .. " " .. (a:find("[%s'\"]") and ("%q"):format(a) or a)
    end
  end
  return s
end

-- A text on one line, at most n characters, safe for a terminal.
local function one_line(s, n)
  if not s then return "" end
  s = s:gsub("%s+", " "):gsub("^ ", "")
  if utf8.len(s) and utf8.len(s) > n then
    s = s:sub(1, utf8.offset(s, n) - 1) .. "…"
  end
  return untrusted.escape(s)
end

-- A text under a call's line, indented; control characters escaped but
-- line breaks kept.
local function block(label, s)
  if not s then return end
  io.stdout:write("  ", label, ":\n")
  for line in (s .. "\n"):gmatch("(.-)\n") do
    io.stdout:write("    ", untrusted.escape(line), "\n")
  end
end

local function show_runs(reader, n, json)
  local runs = reader:runs(n)
  if #runs == 0 then
    io.stderr:write("llmrun logs: no runs logged yet\n")
    return 0
  end
  local rows = {}
  for i = #runs, 1, -1 do
    local r = runs[i]
    if json then
      io.stdout:write(text.encode_json(r), "\n")
    else
      local c = r.calls - (r.cost_unknown or 0) > 0 and text.fmt_value(r.cost, "USD") or "?"
      if (r.cost_unknown or 0) > 0 and c ~= "?" then c = c .. "+?" end
      rows[#rows + 1] = { r.run_id, clock(r.started_at), one_line(script_line(r), 60),
        tostring(r.calls), tostring(r.errors), tostring(r.hits), c, r.simulated and "yes" or "",
        untrusted.escape(r.cwd or "") }
    end
  end
  if not json then
    cli.print_table({ "run", "started", "script", "calls", "failed", "hits", "cost", "simulated", "directory" }, rows)
  end
  return 0
end

function C.main(args)
  local opts, rest = cli.parse(args, spec)
  if #rest > 0 then cli.usage_error("unexpected argument %s", rest[1]) end
  local n = 20
  if opts.count ~= nil then
    n = math.tointeger(tonumber(opts.count))
    if not n or n < 0 then cli.usage_error("-n needs a count >= 0, got %s", opts.count) end
  end
  local log = require "llm.log"
  if opts.path then
    local path, err = log.path()
    if not path then io.stderr:write("llmrun logs: ", err.message, "\n") return 1 end
    io.stdout:write(path, "\n")
    return 0
  end
  local reader, err = log.reader()
  if not reader then
    if err.status == "missing" then
      io.stderr:write("llmrun logs: no calls logged yet (", tostring(log.path()), ")\n")
      return 0
    end
    io.stderr:write("llmrun logs: ", err.message, "\n")
    return 1
  end
  if opts.runs then return show_runs(reader, n, opts.json) end

  local run_id
  if opts.run then
    local why
    run_id, why = reader:find_run(opts.run)
    if not run_id then
      io.stderr:write(why.status == "ambiguous"
        and ("llmrun logs: run id '%s' is ambiguous: give more of it\n"):format(opts.run)
        or ("llmrun logs: no run matches '%s' (llmrun logs --runs lists the runs)\n"):format(opts.run))
      return 1
    end
  end
  if opts.status and not STATUSES[opts.status] then
    cli.usage_error("--status takes ok, error, partial or cancelled, not %s", opts.status)
  end
  local calls = reader:search { run = run_id, tag = opts.tag, model = opts.model, status = opts.status,
    text = opts.query, limit = n, texts = true }
  if #calls == 0 then
    local filtered = opts.tag or opts.model or opts.status or opts.query
    io.stderr:write("llmrun logs: no calls logged", run_id and (" in run " .. run_id) or "",
      filtered and " that match" or (run_id and "" or " yet"), "\n")
    return 0
  end
  local rows = {}
  for i = #calls, 1, -1 do
    local c = calls[i]
    if opts.json then
      io.stdout:write(text.encode_json(c), "\n")
    else
      local status = c.status or "?"
      if c.error_kind then status = status .. " (" .. c.error_kind .. (c.http_status and (" " .. c.http_status) or "") .. ")" end
      local tokens = c.prompt_tokens and ("%d+%d"):format(c.prompt_tokens, c.completion_tokens or 0) or ""
      rows[#rows + 1] = { clock(c.started_at), (c.run_id or ""):sub(-6), untrusted.escape(c.tag or ""),
        untrusted.escape(c.model or ""), status, ms(c.latency_ms), ms(c.ttft_ms), tokens, cost(c.cost, c),
        c.cache_kind or "", c.simulated and "sim" or "",
        one_line(c.response or (c.error and ("error: " .. c.error)), 40), call = c }
    end
  end
  if not opts.json then
    local head = { "time", "run", "tag", "model", "status", "latency", "ttft", "tokens", "cost", "cache", "", "answer" }
    if not opts.full then
      cli.print_table(head, rows)
    else
      for _, r in ipairs(rows) do
        cli.print_table(head, { r })
        block("prompt", r.call.prompt)
        block("answer", r.call.response)
        block("error", r.call.error)
        if not (r.call.prompt or r.call.response or r.call.error) then
          io.stdout:write("  (no text logged)\n")
        end
        io.stdout:write("\n")
      end
    end
  end
  return 0
end

return C
