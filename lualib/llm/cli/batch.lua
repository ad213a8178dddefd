-- llmrun batch: the batches llm.batch recorded (batches.db), their status
-- at the provider, cancelling one, and its results as JSON Lines.
local cli = require "llm.cli"
local cjson = require "cjson"

local C = {}
C.summary = "list recorded Batch API jobs; status, cancel or results of one"
C.usage = [[
usage: llmrun batch list [-n N] [--json]
       llmrun batch status ID [--json]
       llmrun batch cancel ID
       llmrun batch results ID

The batches that llm.batch submitted (and experiments' batch variants) are
recorded in $XDG_DATA_HOME/llmrun/batches.db, so a script that was stopped
finds them again when it is rerun. ID is a batch id or a unique prefix.

  list       the recorded batches, newest first: id, provider/model,
             requests, last known status, when, script (no network)
  status     the provider's view now: status and request counts
  cancel     ask the provider to cancel it (its answers so far are kept)
  results    one JSON object per request, in request order: custom_id,
             text, usage, cost (at the Batch API price) or error

  -n N          how many to list (default 20; 0 for all)
  --json        JSON Lines instead of a table
  --db PATH     the batch record to read (default batches.db beside the call log)
  -m MODEL      reach the batch through this model ("openai/gpt-4o-mini") when
                it is not in the record; keys come from the environment

Exit status: 0 done, 1 the provider or the record failed, 2 usage error.
]]

local spec = { ["-n"] = "count", ["--count"] = "count", ["--json"] = true, ["--db"] = "db",
               ["-m"] = "model", ["--model"] = "model" }

local function when(t)
  if not t or t == 0 then return "" end
  return os.date("%Y-%m-%d %H:%M:%S", math.floor(t))
end

local function failed(err)
  io.stderr:write("llmrun batch: ", tostring(err), "\n")
  return 1
end

local function list(opts)
  local n = tonumber(opts.count or 20)
  if not n or n < 0 then cli.usage_error("-n needs a number >= 0") end
  local recs = llm.batch.list(math.floor(n), { store = opts.db })
  if opts.json then
    for _, r in ipairs(recs) do io.stdout:write(cjson.encode(r), "\n") end
    return 0
  end
  if #recs == 0 then
    io.stderr:write("llmrun batch: no batches recorded yet\n")
    return 0
  end
  local rows = {}
  for _, r in ipairs(recs) do
    rows[#rows + 1] = { r.batch_id, (r.provider or "?") .. "/" .. (r.model or "?"), tostring(r.requests),
      (r.status or "?") .. (r.forgotten and " (superseded)" or ""), when(r.created_at),
      r.script and (r.script:match("[^/]*$")) or "" }
  end
  cli.print_table({ "id", "model", "requests", "status", "submitted", "script" }, rows)
  return 0
end

local function status(id, opts)
  local st, err = llm.batch.status(id, { store = opts.db, model = opts.model })
  if not st then return failed(err) end
  if opts.json then
    local out = {}
    for k, v in pairs(st) do if type(v) ~= "table" then out[k] = v end end
    io.stdout:write(cjson.encode(out), "\n")
    return 0
  end
  io.stdout:write(("%s  %s  %d requests: %d completed, %d failed%s\n"):format(st.id or id, st.status,
    st.total, st.completed, st.failed, st.terminal and "" or (", " .. (st.total - st.done) .. " to go")))
  if st.error then io.stdout:write("  ", tostring(st.error), "\n") end
  return 0
end

local function cancel(id, opts)
  local st, err = llm.batch.cancel(id, { store = opts.db, model = opts.model })
  if not st then return failed(err) end
  io.stdout:write(("%s  %s\n"):format(st.id or id, st.status))
  return 0
end

-- "r12" -> 12, for request order
local function order_of(cid)
  return tonumber(tostring(cid):match("^r(%d+)$")) or math.huge
end

local function results(id, opts)
  local res, err = llm.batch.results(id, { store = opts.db, model = opts.model })
  if not res then return failed(err) end
  if res.error then return failed(res.error) end
  local ids = {}
  for cid in pairs(res.entries) do ids[#ids + 1] = cid end
  table.sort(ids, function(a, b)
    local x, y = order_of(a), order_of(b)
    if x ~= y then return x < y end
    return a < b
  end)
  local ok, bad = 0, 0
  for _, cid in ipairs(ids) do
    local e = res.entries[cid]
    local row = { custom_id = cid }
    if e.parsed then
      ok = ok + 1
      row.text, row.usage, row.finish_reason = e.parsed.text, e.parsed.usage, e.parsed.finish_reason
      row.cost = e.parsed.usage and llm.pricing.cost(res.model, e.parsed.usage, { batch = true, quiet = true })
    else
      bad = bad + 1
      row.error = { kind = e.err.kind, message = e.err.message, code = e.err.code, status = e.err.status }
    end
    io.stdout:write(cjson.encode(row), "\n")
  end
  io.stderr:write(("llmrun batch: %s %s: %d answers, %d errors%s\n"):format(res.state.id, res.state.status,
    ok, bad, res.malformed > 0 and (", " .. res.malformed .. " unreadable lines") or ""))
  return 0
end

function C.main(args)
  local opts, rest = cli.parse(args, spec)
  local cmd, id = rest[1], rest[2]
  if cmd == nil then cli.usage_error("a subcommand is needed: list, status, cancel or results") end
  if cmd == "list" then
    if id then cli.usage_error("list takes no id") end
    return list(opts)
  end
  local fn = ({ status = status, cancel = cancel, results = results })[cmd]
  if not fn then cli.usage_error("unknown subcommand '%s' (list, status, cancel, results)", cmd) end
  if not id then cli.usage_error("%s needs a batch id", cmd) end
  if rest[3] then cli.usage_error("unexpected argument '%s'", rest[3]) end
  return fn(id, opts)
end

return C
