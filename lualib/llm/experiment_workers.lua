-- Experiments spread over many workers through Redis.
--
--   llmrun exp.lua --workers redis://host:6379/0     (or LLMRUN_WORKERS=...,
--                                                      or llm.experiment{ workers = url, ... })
--   llmrun worker redis://host:6379/0 exp.lua         (on each worker host, any number)
--
-- Every process runs the same script, so every process defines the same
-- experiment, variant functions included: nothing but case numbers and
-- results crosses Redis. In the coordinator, llm.experiment enqueues the
-- experiment's (variant, case) units on a Redis stream and waits; in a
-- worker, the same llm.experiment call serves units instead: it reads them
-- through a consumer group (XREADGROUP), runs each like a local run would
-- (compute_case of llm.experiment), and pushes the case's row (latency,
-- tokens, cost, verdict, the response's text, the call-log rows of its
-- calls) to a results stream, then acknowledges the unit. The coordinator
-- adds the rows in unit order and builds the report as a local run does;
-- it logs the workers' calls in its own run. When it is done, every
-- worker builds the same report from the results stream and the script
-- goes on identically everywhere (so a second experiment that depends on
-- the first is the same experiment in every process); a worker's
-- cmp:html(path) does not write (the coordinator does).
--
-- A worker that dies mid-case leaves its units pending in the group: after
-- claim_after seconds without a sign of life (default 30; a live worker
-- renews its claim every claim_after/3 seconds while a case runs) another
-- worker claims them (XAUTOCLAIM) and runs them again. A case may so be
-- attempted twice; the report counts its first result once and says how
-- many cases were reclaimed and how many results came twice.
--
-- Identity: an experiment is named by the script's file name, its place
-- among the script's llm.experiment calls and its title; a fingerprint of
-- its case ids, variants and settings must match, so a worker running
-- other data refuses to serve it (and says why) instead of mixing results.
-- Keys: llmrun:{exp:<name hash>}:..., kept one day after the run ends.
local C = require "_llm.cache"
local cjson = require "cjson"
local loop = require "_llm.loop"
local context = require "llm.context"

local M = {}

M.DEFAULT_CLAIM_AFTER = 30
M.DEFAULT_WAIT = 300         -- seconds a worker waits for its experiment to be enqueued
M.KEEP_SECONDS = 86400
M.GROUP = "workers"
M.PROGRESS_EVERY = 5         -- seconds between progress lines when stderr is not a terminal
M.OUTAGE_LIMIT = 300         -- seconds either side waits for an unreachable Redis before giving up

local now = loop.now

local state = { worker = nil, ordinal = 0 }

--- Turns this process into a worker (llmrun worker): llm.experiment then
-- serves units. opts: url, name, wait (seconds).
function M.enable_worker(opts)
  state.worker = opts
  -- the calls a worker makes are logged by the coordinator, in its run
  require("llm.log").off()
end

function M.is_worker() return state.worker ~= nil end

--- How many llm.experiment calls this process made so far.
function M.ordinal() return state.ordinal end

local function say(fmt, ...)
  io.stderr:write(fmt:format(...), "\n")
  io.stderr:flush()
end

local function script_arg(name)
  local a = rawget(_G, "arg")
  if type(a) ~= "table" then return nil end
  for i = 1, #a do
    if a[i] == name and a[i + 1] then return a[i + 1] end
    local v = type(a[i]) == "string" and a[i]:match("^" .. name:gsub("%-", "%%-") .. "=(.+)$")
    if v then return v end
  end
end

--- For llm.experiment: nil (run here), or "serve" | "coordinate" and the URL.
function M.plan(spec)
  state.ordinal = state.ordinal + 1
  if state.worker then return "serve", state.worker.url end
  local url = spec.workers
  if url ~= nil and type(url) ~= "string" then
    error("llm.experiment: workers must be a redis:// URL", 3)
  end
  url = url or script_arg("--workers")
  if url == nil then
    local env = os.getenv("LLMRUN_WORKERS")
    if env and env ~= "" then url = env end
  end
  if url then return "coordinate", url end
end

-- ---- identity --------------------------------------------------------------------------

local function script_name()
  local a = rawget(_G, "arg")
  local s = type(a) == "table" and a[0] or nil
  return s and tostring(s):match("[^/]*$") or "(interactive)"
end

local function exp_name(ex)
  return ("%s #%d %s"):format(script_name(), state.ordinal, ex.title or "experiment")
end

local function fingerprint(ex, cases, variants, ids)
  local canon = require "llm.cache_canon"
  local names = {}
  for i, v in ipairs(variants) do names[i] = v.name end
  local doc = { ids = ids, variants = names, repeats = ex.repeats, mode = ex.mode, batches = ex.batches,
                check = ex.check ~= nil }
  local ok, text = pcall(canon.encode, doc)
  local ok2, ctext = pcall(canon.encode, cases)
  return C.hex(C.sha256((ok and text or table.concat(ids, "\0")) .. "\0" .. (ok2 and ctext or "")))
end

local function keys(name, run)
  local redis = require "llm.redis"
  local tag = "exp:" .. C.hex(C.sha256(name)):sub(1, 16)
  local k = { current = redis.key(tag, "current") }
  for _, part in ipairs { "meta", "units", "results", "workers", "beat" } do
    k[part] = redis.key(tag, run or "", part)
  end
  return k
end

-- ---- rows as JSON ----------------------------------------------------------------------

local json = cjson.new()
json.encode_invalid_numbers(true)
json.decode_invalid_numbers(true)
json.encode_sparse_array(true)

local RESPONSE_FIELDS = { "text", "cached", "model", "provider", "simulated", "usage", "cost", "latency_ms",
  "ttft_ms", "finish_reason", "similarity", "shared", "refusal", "sim_skill" }

local function plain(v, depth)
  if type(v) ~= "table" then
    if type(v) == "function" or type(v) == "userdata" or type(v) == "thread" then return nil end
    return v
  end
  if depth > 6 then return nil end
  local out = {}
  for k, x in pairs(v) do
    if type(k) == "string" or math.type(k) == "integer" then out[k] = plain(x, depth + 1) end
  end
  return out
end

local function pack_row(row)
  local t = {}
  for k, v in pairs(row) do t[k] = v end
  if type(row.response) == "table" then
    local r = {}
    for _, k in ipairs(RESPONSE_FIELDS) do r[k] = plain(row.response[k], 1) end
    t.response = r
  end
  local err = row.error
  if err ~= nil then
    if require("llm.errors").is(err) then
      t.error = { llm_error = plain(err, 1) }
    elseif type(err) == "table" then
      t.error = { table = plain(err, 1) }
    else
      t.error = { text = tostring(err) }
    end
  end
  t.result = plain(row.result, 1)
  return json.encode(t)
end

local INTS = { "index", "calls", "hits", "simulated", "call_errors", "prompt", "completion", "cached",
  "retries", "check_calls", "check_hits", "check_filler" }
local LOG_INTS = { "prompt", "completion", "cached", "creation", "input", "retries", "estatus" }

local function unjson(v)
  if v == json.null then return nil end
  if type(v) ~= "table" then return v end
  for k, x in pairs(v) do v[k] = unjson(x) end
  return v
end

local function unpack_row(text)
  local ok, t = pcall(json.decode, text)
  if not ok or type(t) ~= "table" then return nil end
  t = unjson(t)
  for _, k in ipairs(INTS) do t[k] = math.tointeger(t[k]) or t[k] end
  for name, n in pairs(t.models or {}) do t.models[name] = math.tointeger(n) or n end
  if type(t.response) == "table" and type(t.response.usage) == "table" then
    for k, n in pairs(t.response.usage) do t.response.usage[k] = math.tointeger(n) or n end
  end
  for _, r in ipairs(t.log or {}) do
    for _, k in ipairs(LOG_INTS) do r[k] = math.tointeger(r[k]) or r[k] end
  end
  local e = t.error
  if type(e) == "table" then
    if e.llm_error then
      local f = e.llm_error
      for k, x in pairs(f) do f[k] = math.tointeger(x) or x end -- an HTTP status is an integer
      t.error = require("llm.errors").new(f.kind or "error", f.message, f)
    elseif e.table then
      t.error = e.table
    else
      t.error = e.text
    end
  end
  t.models = t.models or {}
  return t
end
M._pack_row, M._unpack_row = pack_row, unpack_row

-- ---- the units, in the order a local run takes them -------------------------------------

-- -> units {v = variant index, i = case index}, phases {{first, last}}:
-- one phase in interleaved mode; in blocks mode one per (repeat, batch,
-- variant), run one after the other so each has its wall time.
local function unit_plan(ex, variants, ncases, I)
  local index = {}
  for k, v in ipairs(variants) do index[v] = k end
  local units, phases = {}, {}
  if ex.mode == "blocks" then
    local batches, nv = I.block_batches(ex, ncases), #variants
    for rep = 1, ex.repeats do
      for b, idx in ipairs(batches) do
        for k = 0, nv - 1 do
          local vi = (rep + b + k - 2) % nv + 1
          local first = #units + 1
          for _, i in ipairs(idx) do units[#units + 1] = { v = vi, i = i } end
          phases[#phases + 1] = { first = first, last = #units, v = vi, scale = ncases / #idx }
        end
      end
    end
  else
    for n, u in ipairs(I.interleaved_units(ex, variants, ncases)) do units[n] = { v = index[u.v], i = u.i } end
    phases[1] = { first = 1, last = #units }
  end
  return units, phases
end

-- ---- the results stream: both sides read it the same way ---------------------------------

-- Reads results from id `from` on (c: a connection of _llm.redis); calls
-- add(u, row_text, worker, reclaimed, ms) per entry. -> the last id, or nil, err.
local function read_results(c, K, from, block_ms, add)
  local redis = require "llm.redis"
  local cmd = { "XREAD", "COUNT", 1000 }
  if block_ms then cmd[#cmd + 1], cmd[#cmd + 2] = "BLOCK", block_ms end
  cmd[#cmd + 1], cmd[#cmd + 2], cmd[#cmd + 3] = "STREAMS", K.results, from
  local reply, err = c:call((block_ms or 0) / 1000 + 5, table.unpack(cmd))
  if reply == nil then return nil, err end
  for _, e in ipairs(redis.stream_entries(reply)) do
    from = e.id
    local u = tonumber(e.fields.u)
    if u then
      add(math.tointeger(u), e.fields.row, e.fields.w or "?", e.fields.re == "1",
        tonumber(e.id:match("^(%d+)")))
    end
  end
  return from
end

-- Tallies of a run's results: per worker, reclaimed, twice.
local function new_tally(total)
  return { total = total, got = 0, rows = {}, workers = {}, order = {}, reclaimed = 0, twice = 0 }
end

local function tally_add(t, u, text, worker, reclaimed, ms)
  local w = t.workers[worker]
  if not w then
    w = { name = worker, cases = 0, first_ms = ms, last_ms = ms, reclaimed = 0 }
    t.workers[worker] = w
    t.order[#t.order + 1] = worker
  end
  w.last_ms = ms
  if t.rows[u] then
    t.twice = t.twice + 1
    return
  end
  local row = unpack_row(text)
  if not row then return end
  t.rows[u] = row
  t.got = t.got + 1
  w.cases = w.cases + 1
  if reclaimed then
    t.reclaimed = t.reclaimed + 1
    w.reclaimed = w.reclaimed + 1
  end
end

local function rate_of(w)
  local span = (w.last_ms - w.first_ms) / 1000
  return span > 0 and (w.cases - 1) / span or nil
end

local function workers_summary(t)
  local parts = {}
  for _, name in ipairs(t.order) do
    local w = t.workers[name]
    local r = rate_of(w)
    parts[#parts + 1] = ("%s %d runs%s"):format(name, w.cases, r and (" at %.0f/s"):format(r) or "")
  end
  return table.concat(parts, ", ")
end

-- Builds the comparison from the rows, in unit order, as a local run does.
local function report(ex, cases, variants, I, units, t, meta, url)
  local log = require "llm.log"
  for u, unit in ipairs(units) do
    local row = t.rows[u]
    if row then I.record_case(variants[unit.v], row) end
  end
  if meta.walls then
    local ok, walls = pcall(json.decode, meta.walls)
    if ok and type(walls) == "table" then
      for k, v in ipairs(variants) do
        if type(walls[k]) == "table" then v.walls = walls[k] end
      end
    end
  end
  local cmp = I.build(ex, variants, cases, tonumber(meta.wall) or 0)
  local notes = cmp.report.notes
  local display = require("llm.redis").parse_url(url)
  table.insert(notes, 2, ("spread over %d worker%s through %s: %s"):format(#t.order, #t.order == 1 and "" or "s",
    display and display.display or "Redis", workers_summary(t)))
  if t.reclaimed > 0 or t.twice > 0 then
    table.insert(notes, 3, ("%d run%s of a case reclaimed from a worker that stopped and run again; %d "
      .. "result%s came twice (a case attempted twice is counted once)"):format(t.reclaimed,
      t.reclaimed == 1 and " was" or "s were", t.twice, t.twice == 1 and "" or "s"))
  end
  local ws = {}
  for _, name in ipairs(t.order) do
    local w = t.workers[name]
    ws[#ws + 1] = { name = name, cases = w.cases, rate = rate_of(w), reclaimed = w.reclaimed }
  end
  cmp.workers = { url = display and display.display, list = ws, reclaimed = t.reclaimed, twice = t.twice,
                  cases = t.got }
  return cmp, log
end

-- ---- the coordinator -----------------------------------------------------------------------

local function fail(url, what, err)
  error(("llm.experiment: workers = %s: %s: %s"):format(url, what, tostring(err and err.message or err)), 0)
end

local function progress_line(t, live, started)
  local done, total = t.got, t.total
  local el = now() - started
  local parts = { ("%d/%d runs"):format(done, total) }
  if el > 0 and done > 0 then parts[#parts + 1] = ("%.0f/s"):format(done / el) end
  parts[#parts + 1] = ("workers %d live%s"):format(live, #t.order > 0 and (" (" .. workers_summary(t) .. ")") or "")
  if t.reclaimed > 0 then parts[#parts + 1] = ("reclaimed %d"):format(t.reclaimed) end
  if t.twice > 0 then parts[#parts + 1] = ("twice %d"):format(t.twice) end
  return table.concat(parts, "  ")
end

local function coordinate(url, ex, cases, variants, ids, I)
  local redis = require "llm.redis"
  local cl = redis.client(url)
  local name = exp_name(ex)
  local run = require("_llm.calllog").new_run_id()
  local K = keys(name, run)
  local units, phases = unit_plan(ex, variants, #cases, I)
  local claim_after = ex.claim_after or M.DEFAULT_CLAIM_AFTER
  local outage_limit = ex.redis_wait or M.OUTAGE_LIMIT
  local r, err = cl:pipeline({
    { "HSET", K.meta, "name", name, "fp", fingerprint(ex, cases, variants, ids), "units", #units,
      "state", "running", "claim_after", claim_after },
    { "XGROUP", "CREATE", K.units, M.GROUP, "0", "MKSTREAM" },
    { "SET", K.current, run, "EX", M.KEEP_SECONDS },
  })
  if not r then fail(url, "cannot reach Redis to enqueue the experiment", err) end
  for _, x in ipairs(r) do
    if require("llm.errors").is(x) then fail(url, "Redis refused to set the experiment up", x) end
  end
  local tty = ex.progress ~= false and require("llm.progress").wanted(#units)
  if ex.progress ~= false then
    say("llm.experiment: %s: %d cases × %d variants queued on %s for workers "
      .. "(start them with: llmrun worker %s %s)", name, #cases, #variants,
      redis.parse_url(url).display, redis.parse_url(url).display, script_name())
  end
  local t = new_tally(#units)
  local bc = cl:borrow()
  local from = "0-0"
  local started = now()
  -- a sign of life for the workers: one that sees none for a while stops
  local beat <close> = cl:every(1, "INCR", K.beat) -- stopped however this ends
  local beats, live, last_beat_change = {}, 0, now()
  local last_print, last_poll, hinted, outage = now(), 0, false, nil
  local walls = {}
  for _, ph in ipairs(phases) do
    -- enqueue this phase's units
    local batch = {}
    local function flush()
      if #batch == 0 then return end
      local ok, e = cl:pipeline(batch, 30)
      if not ok then fail(url, "cannot enqueue the cases", e) end
      batch = {}
    end
    for u = ph.first, ph.last do
      local unit = units[u]
      batch[#batch + 1] = { "XADD", K.units, "*", "u", u, "i", unit.i, "v", unit.v }
      if #batch == 500 then flush() end
    end
    flush()
    local t0 = now()
    local function phase_done()
      for u = ph.first, ph.last do if not t.rows[u] then return false end end
      return true
    end
    while not phase_done() do
      local last, rerr = read_results(bc, K, from, 1000, function(...) tally_add(t, ...) end)
      if last then
        from = last
        if outage then say("llm.experiment: Redis is back") outage = nil end
      else
        if not outage then
          outage = now()
          say("llm.experiment: Redis at %s is unreachable (%s); waiting up to %g s for it",
            redis.parse_url(url).display, tostring(rerr and rerr.message or rerr), outage_limit)
        elseif now() - outage > outage_limit then
          fail(url, ("Redis has been unreachable for %g s; giving up"):format(outage_limit), rerr)
        end
        bc:close()
        bc = cl:borrow()
        loop.sleep(0.5)
      end
      if now() - last_poll >= 1 then
        last_poll = now()
        local h = cl:call("HGETALL", K.workers)
        if cl:call("HGET", K.meta, "state") == false then
          fail(url, "the experiment's state in Redis is gone", "was Redis restarted without persistence "
            .. "(appendonly) or flushed? Run the experiment again")
        end
        if type(h) == "table" then
          live = 0
          for i = 1, #h - 1, 2 do
            local b = beats[h[i]]
            if b and b.value ~= h[i + 1] then b.value, b.at = h[i + 1], now()
            elseif not b then beats[h[i]] = { value = h[i + 1], at = now() } end
            if now() - beats[h[i]].at < 3 then live = live + 1 end
          end
          if live > 0 then last_beat_change = now() end
          if live == 0 and now() - last_beat_change > 10 and now() - (hinted or 0) > 60
              and ex.progress ~= false then
            hinted = now()
            say("llm.experiment: no worker is serving %s; start one with: llmrun worker %s %s", name,
              redis.parse_url(url).display, script_name())
          end
        end
      end
      if tty then
        io.stderr:write("\r", progress_line(t, live, started), "\27[K")
        io.stderr:flush()
      elseif ex.progress ~= false and now() - last_print >= M.PROGRESS_EVERY then
        last_print = now()
        say("llm.experiment: %s", progress_line(t, live, started))
      end
    end
    if ph.v then
      walls[ph.v] = walls[ph.v] or {}
      local w = walls[ph.v]
      w[#w + 1] = (now() - t0) * ph.scale
    end
  end
  beat:stop()
  cl:give_back(bc)
  local wall = now() - started
  local meta = { wall = wall }
  if ex.mode == "blocks" then
    local list = {}
    for k = 1, #variants do list[k] = walls[k] or {} end
    meta.walls = json.encode(list)
  end
  cl:pipeline({
    { "HSET", K.meta, "state", "done", "wall", wall, "walls", meta.walls or "" },
    { "EXPIRE", K.meta, M.KEEP_SECONDS }, { "EXPIRE", K.units, M.KEEP_SECONDS },
    { "EXPIRE", K.results, M.KEEP_SECONDS }, { "EXPIRE", K.workers, M.KEEP_SECONDS },
    { "EXPIRE", K.beat, M.KEEP_SECONDS },
  })
  if tty then io.stderr:write("\r", progress_line(t, live, started), "\27[K\n") end
  if ex.progress ~= false then say("llm.experiment: done: %s", progress_line(t, live, started)) end
  local cmp, log = report(ex, cases, variants, I, units, t, meta, url)
  -- the workers' calls join this run's call log
  for u = 1, #units do
    for _, row in ipairs(t.rows[u] and t.rows[u].log or {}) do log.append_row(row) end
  end
  return cmp
end

-- ---- the worker ---------------------------------------------------------------------------------

-- Waits for the coordinator to enqueue this experiment -> run id, meta.
local function find_run(cl, url, name, fp, wait)
  local K0 = keys(name)
  local deadline, said, warned = now() + wait, false, false
  while true do
    local run, err = cl:call("GET", K0.current)
    if run == nil then
      if not warned then
        warned = true
        say("llmrun worker: Redis at %s is unreachable (%s); retrying for %g s",
          require("llm.redis").parse_url(url).display, tostring(err and err.message), wait)
      end
    elseif run then
      local K = keys(name, run)
      local h = cl:call("HGETALL", K.meta)
      local meta = {}
      for i = 1, type(h) == "table" and #h - 1 or 0, 2 do meta[h[i]] = h[i + 1] end
      if meta.state == "running" then
        if meta.fp ~= fp then
          error(("llmrun worker: the coordinator's %s differs from this worker's (other cases, "
            .. "variants or settings: is the same script and data on this host?)"):format(name), 0)
        end
        return run, meta
      end
    end
    if now() >= deadline then
      error(("llmrun worker: no coordinator enqueued %s within %g s (run the script with "
        .. "--workers %s)"):format(name, wait, require("llm.redis").parse_url(url).display), 0)
    end
    if not said then
      said = true
      say("llmrun worker: waiting for %s to be enqueued", name)
    end
    loop.sleep(0.2)
  end
end

--- worker.log, a finish-stage (llm.pipeline, installed by a worker's first
-- case): the call-log row of each call a case makes, kept with the case
-- for its coordinator, which logs it in its own run.
function M.log_stage(call, resp, err, partial)
  local ctx = call.context
  local rec = ctx and (ctx._experiment_case or ctx._experiment_check)
  if not rec or not rec.log_rows or rec.closed then return end
  rec.log_rows[#rec.log_rows + 1] = require("llm.log").row_of(call, resp, err, partial)
end

local function install_log_hook()
  require("llm.pipeline").use("worker")
end

local function entries_of(list)
  local out = {}
  for _, e in ipairs(type(list) == "table" and list or {}) do
    if type(e) == "table" and type(e[2]) == "table" then
      local f = {}
      for i = 1, #e[2] - 1, 2 do f[e[2][i]] = e[2][i + 1] end
      out[#out + 1] = { id = e[1], fields = f }
    end
  end
  return out
end

local function serve(url, ex, cases, variants, ids, I)
  local redis = require "llm.redis"
  local w = state.worker
  local cl = redis.client(url)
  local name = exp_name(ex)
  local run, meta = find_run(cl, url, name, fingerprint(ex, cases, variants, ids), w.wait or M.DEFAULT_WAIT)
  local K = keys(name, run)
  local claim_after = tonumber(meta.claim_after) or M.DEFAULT_CLAIM_AFTER
  local claim_ms = math.max(1, math.floor(claim_after * 1000))
  say("llmrun worker %s: serving %s (%s units)", w.name, name, meta.units or "?")
  I.warm_up(ex, variants, cases, ids)
  ex.collect_log = true
  install_log_hook()
  local sems = I.semaphores(variants)
  local slots = ex.concurrency or 1
  for _, v in ipairs(variants) do
    if ex.mode == "blocks" then slots = math.max(slots, v.concurrency or ex.concurrency or 1) end
  end
  local me = loop.current()
  local running, waiting, tasks, served, warned = 0, false, {}, 0, false
  local outage_limit = w.wait or M.OUTAGE_LIMIT
  local heartbeat <close> = cl:every(1, "HINCRBY", K.workers, w.name, 1)
  cl:send("HINCRBY", K.workers, w.name, 1)

  local function process(entry, reclaimed)
    local f = entry.fields
    local u, i, vi = tonumber(f.u), tonumber(f.i), tonumber(f.v)
    local v = variants[vi]
    if u and i and v and cases[i] ~= nil then
      -- renew the claim while the case runs, so nobody takes it over
      local keeper <close> = cl:every(math.max(0.05, claim_after / 3), "XCLAIM", K.units, M.GROUP, w.name, 0,
        entry.id, "JUSTID")
      local row
      if sems[v] then row = sems[v]:with(I.compute_case, ex, v, cases[i], ids[i], true, i)
      else row = I.compute_case(ex, v, cases[i], ids[i], true, i) end
      keeper:stop()
      local payload = pack_row(row)
      while true do
        local r, err = cl:pipeline({
          { "XADD", K.results, "*", "u", u, "w", w.name, "re", reclaimed and 1 or 0, "row", payload },
          { "XACK", K.units, M.GROUP, entry.id } })
        if r then
          warned = false
          break
        end
        if not warned then
          warned = now()
          say("llmrun worker %s: cannot push a result (%s); retrying", w.name, tostring(err and err.message))
        elseif now() - warned > outage_limit then
          break -- left unacknowledged: another worker will run the case
        end
        loop.sleep(0.5)
      end
      served = served + 1
    end
    running = running - 1
    if waiting then loop.wake(me) end
  end

  local function start(entries, reclaimed)
    for _, e in ipairs(entries) do
      running = running + 1
      tasks[#tasks + 1] = context.spawn(process, e, reclaimed)
    end
  end

  local bc = cl:borrow()
  local last_check, outage = 0, nil
  local coordinator_beat, beat_seen = nil, now()
  while true do
    if now() - last_check >= 0.5 then
      last_check = now()
      local r = cl:pipeline({ { "HGET", K.meta, "state" }, { "GET", K.current }, { "GET", K.beat } })
      if r then
        if r[1] == "done" or (r[2] and r[2] ~= run) then break end
        if r[1] == false then
          error(("llmrun worker %s: the state of %s in Redis is gone (Redis restarted without persistence, "
            .. "or flushed); stopping"):format(w.name, name), 0)
        end
        if r[3] ~= coordinator_beat then coordinator_beat, beat_seen = r[3], now() end
        if now() - beat_seen > outage_limit then
          error(("llmrun worker %s: the coordinator of %s has shown no sign of life for %g s; stopping")
            :format(w.name, name, outage_limit), 0)
        end
      end
    end
    local free = slots - running
    if free <= 0 then
      waiting = true
      loop.suspend()
      waiting = false
    else
      local reply, err = bc:call(5, "XREADGROUP", "GROUP", M.GROUP, w.name, "COUNT", free, "BLOCK", 300,
        "STREAMS", K.units, ">")
      if reply == nil then
        if err.kind == "redis" and tostring(err.message):find("NOGROUP", 1, true) then
          error(("llmrun worker %s: the queue of %s is gone from Redis (restarted without persistence?); "
            .. "stopping"):format(w.name, name), 0)
        end
        if not outage then
          outage = now()
          say("llmrun worker %s: Redis is unreachable (%s); retrying for up to %g s", w.name,
            tostring(err.message), outage_limit)
        elseif now() - outage > outage_limit then
          error(("llmrun worker %s: Redis has been unreachable for %g s; stopping"):format(w.name,
            outage_limit), 0)
        end
        bc:close()
        bc = cl:borrow()
        loop.sleep(0.3)
      else
        if outage then
          say("llmrun worker %s: Redis is back", w.name)
          outage = nil
        end
        local entries = redis.stream_entries(reply)
        if #entries > 0 then
          start(entries, false)
        else
          -- nothing new: take over what a silent worker left (idle > claim_after)
          local c = cl:call("XAUTOCLAIM", K.units, M.GROUP, w.name, claim_ms, "0-0", "COUNT", free)
          if type(c) == "table" then start(entries_of(c[2]), true) end
        end
      end
    end
  end
  heartbeat:stop()
  cl:give_back(bc)
  -- the experiment is complete: what still runs here was done elsewhere too
  for _, t in ipairs(tasks) do t:cancel() end
  say("llmrun worker %s: %s done (%d cases served here)", w.name, name, served)
  -- the same report as the coordinator's, from the results stream
  local h = cl:call("HGETALL", K.meta)
  local m = {}
  for i = 1, type(h) == "table" and #h - 1 or 0, 2 do m[h[i]] = h[i + 1] end
  local units = unit_plan(ex, variants, #cases, I)
  local t = new_tally(#units)
  local from = "0-0"
  while true do
    local before = t.got + t.twice
    local last = read_results(cl.c, K, from, nil, function(...) tally_add(t, ...) end)
    if not last or last == from or t.got + t.twice == before then break end
    from = last
  end
  local cmp = report(ex, cases, variants, I, units, t, m, url)
  -- files are the coordinator's to write
  cmp.html = function(_, path)
    say("llmrun worker: not writing %s (the coordinator writes the report)", tostring(path))
    return true
  end
  return cmp
end

--- Runs an experiment the distributed way (see llm.experiment).
function M.run(how, url, ex, cases, variants, ids, I)
  require("llm.redis").client(url) -- a malformed URL raises here, as misuse
  if how == "serve" then return serve(url, ex, cases, variants, ids, I) end
  return coordinate(url, ex, cases, variants, ids, I)
end

return M
