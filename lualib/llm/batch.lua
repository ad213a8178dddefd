-- llm.batch: chat requests sent through a provider's Batch API (OpenAI's
-- Batch API, Anthropic's Message Batches; the simulator speaks both),
-- at batch prices, with results in input order.
--
--   local results, errors = llm.batch(model, requests [, opts])
--   for i = 1, results.n do
--     local r = results[i]            -- a response, as m:chat returns it, or nil
--     if r then print(r.text, r.cost, r.batch.id) else print(errors[i]) end
--   end
--
-- results[i] is the response to requests[i] (nil when it failed): text,
-- usage, cost at the Batch API price, latency_ms (submission, or resuming,
-- to results), and batch = {id =, custom_id =, status =}. errors[i] is
-- its llm.error (kind "http" for a request the provider refused, "batch"
-- with code batch_expired / batch_cancelled / batch_failed / missing for
-- what the batch did to it, "budget" when a budget refused it, or the
-- transport's error when the batch could not be submitted or followed).
-- results.n = #requests, errors.count = how many failed, results.batches
-- = {{id =, status =, requests =, completed =, failed =, resumed =,
-- seconds = {submit =, wait =, results =}}...}.
-- Misuse (a request that is not one, an unknown option) raises.
--
-- opts:
--   tag, case       call log labels (case: fn(i, request) -> id; default
--                   the request's position, or the running experiment case)
--   resume = true   find a batch already submitted for the same requests
--                   (same model, endpoint and key) and wait for it instead
--                   of paying again; false submits anew (to sample again)
--   store           the batch record's path (default: batches.db beside the
--                   call log); false keeps no record
--   poll = {min=, max=, factor=}   seconds between status checks, growing
--                   (defaults 2, 60, 1.5; on the simulator 0.05, 1, 1.5)
--   timeout         give up waiting after this many seconds (the batch goes
--                   on at the provider; a rerun resumes it)
--   poll_failures   failed status checks in a row before giving up (20)
--   max_requests, max_bytes   split into batches below these (and below
--                   the provider's limits: 50,000 requests / 200 MB for
--                   OpenAI, 100,000 / 256 MB for Anthropic)
--   metadata        OpenAI: extra metadata pairs for the batch
--   max_retries     retries of each request to the Batch API
--   progress = false, quiet = true (no "submitted"/"resuming" lines)
--
-- Every request is one call of the call log (kind "batch"), under the
-- budget and the price hooks like any call; a response cache is not
-- consulted. Inside llm.experiment, a variant with batch = true sends its
-- cases' m:chat calls this way (llm.batch_defer).
--
-- Also: llm.batch.list([n]), .status(id), .cancel(id), .results(id) for
-- the batches in the record (used by `llmrun batch`).
local loop = require "_llm.loop"
local hashlib = require "_llm.cache"
local canon = require "_llm.canon"
local async = require "llm.async"
local calls = require "llm.calls"
local context = require "llm.context"
local errors = require "llm.errors"
local pipeline = require "llm.pipeline"
local pricing = require "llm.pricing"
local response = require "llm.response"
local store_mod = require "llm.batch_store"

local M = {}

local adapters = { openai = "llm.batch_openai", anthropic = "llm.batch_anthropic" }

--- The Batch API adapter of a model's wire format (raises if it has none).
function M.adapter_for(model, level)
  local fname = model.format and model.format.name
  local modname = adapters[fname]
  if not modname then
    error(("llm.batch: provider '%s' has no Batch API llmrun speaks (OpenAI's or Anthropic's)")
      :format(tostring(model.provider)), level or 3)
  end
  return require(modname)
end

-- ---- prices -----------------------------------------------------------------------

-- batch.price, a finish-stage (llm.pipeline, installed by the first batch
-- sent): after the prices (priority 10) and before the budget, the call
-- log and every observer, a batch request costs the Batch API price.
local BATCH = { batch = true }
function M.price_stage(call, resp)
  if not call.batch or type(resp) ~= "table" or resp.cached or type(resp.usage) ~= "table" then
    return
  end
  local e = pricing.get(call.model.name)
  if not e and type(resp.model) == "string" then e = pricing.get(resp.model) end
  resp.cost = e and pricing.cost_with(e, resp.usage, BATCH) or nil
end

-- ---- options ----------------------------------------------------------------------

local option_types = {
  tag = "string", case = "function", resume = "boolean", store = "string|boolean",
  poll = "table", timeout = "number", poll_failures = "number", max_requests = "number",
  max_bytes = "number", metadata = "table", max_retries = "number", progress = "boolean",
  quiet = "boolean",
}

--- Checks llm.batch's options (misuse raises at `level`); returns them.
function M.check_opts(opts, fname, level)
  level = level or 3
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("bad argument #3 to '%s' (table of options expected, got %s)"):format(fname, type(opts)), level)
  end
  for k, v in pairs(opts) do
    local want = option_types[k]
    if not want then error(("%s: unknown option '%s'"):format(fname, tostring(k)), level) end
    if not want:find(type(v), 1, true) then
      error(("%s: option '%s' must be a %s, got %s"):format(fname, k, (want:gsub("|", " or ")), type(v)), level)
    end
  end
  for _, k in ipairs { "max_requests", "max_bytes" } do
    if opts[k] ~= nil and (math.type(opts[k]) ~= "integer" or opts[k] < 1) then
      error(("%s: %s must be an integer >= 1"):format(fname, k), level)
    end
  end
  for k, v in pairs(opts.poll or {}) do
    if (k ~= "min" and k ~= "max" and k ~= "factor") or type(v) ~= "number" or v <= 0 then
      error(("%s: poll = {min =, max =, factor =} (numbers > 0)"):format(fname), level)
    end
  end
  return opts
end
local check_opts = M.check_opts

local function poll_settings(model, opts)
  local d = model.simulated and { min = 0.05, max = 1, factor = 1.5 } or { min = 2, max = 60, factor = 1.5 }
  for k, v in pairs(opts.poll or {}) do d[k] = v end -- checked by check_opts
  return d
end

local function say(opts, fmt, ...)
  if opts.quiet then return end
  io.stderr:write("llmrun: ", fmt:format(...), "\n")
end

-- ---- sending ----------------------------------------------------------------------

local function hex_sha256(s) return hashlib.hex(hashlib.sha256(s)) end

local function fail_items(ch, err)
  for _, it in ipairs(ch.items) do it.err = it.err or err end
end

-- Splits the items into batches under the limits; an item too large for
-- any batch fails alone.
local function chunks_of(A, model, items, opts)
  local max_n = math.min(opts.max_requests or A.MAX_REQUESTS, A.MAX_REQUESTS)
  local max_b = math.min(opts.max_bytes or A.MAX_BYTES, A.MAX_BYTES)
  local account = model.cfg.api_key and hex_sha256(model.cfg.api_key) or ""
  local chunks, cur = {}, nil
  for _, it in ipairs(items) do
    it.custom_id = "r" .. it.index
    local ok, text = pcall(A.item, model, it.body, it.custom_id)
    local size = ok and A.item_bytes(text) or 0
    if not ok then
      it.err = errors.new("batch", "the request could not be encoded: " .. tostring(text), { code = "invalid_request" })
    elseif size > max_b then
      it.err = errors.new("batch", ("the request has %d bytes, more than a batch may hold (%d)")
        :format(size, max_b), { code = "too_large" })
    else
      if not cur or #cur.items >= max_n or cur.bytes + size > max_b then
        cur = { items = {}, texts = {}, bytes = 0, keyed = {}, done = 0 }
        chunks[#chunks + 1] = cur
      end
      cur.items[#cur.items + 1] = it
      cur.texts[#cur.texts + 1] = text
      cur.keyed[#cur.keyed + 1] = { it.custom_id, it.body }
      cur.bytes = cur.bytes + size
    end
  end
  for _, ch in ipairs(chunks) do
    -- the key a rerun finds the batch by: what is asked, of whom, where;
    -- canonical, so it does not depend on a table's key order
    local text = canon.encode { v = 1, provider = model.provider, base_url = model.cfg.base_url,
      model = model.name, account = account, requests = ch.keyed }
    ch.hash = hex_sha256(text or table.concat(ch.texts, "\n"))
    ch.first = ch.items[1].index
    ch.keyed = nil
  end
  return chunks
end

local function record(ctx, ch, st, input_file)
  store_mod.call(ctx.store, "put", {
    batch_id = ch.id, hash = ch.hash, provider = ctx.model.provider,
    base_url = ctx.model.cfg.base_url, model = ctx.model.name, input_file = input_file,
    status = st and st.status or nil, requests = #ch.items, first = ch.first,
    created_at = store_mod.now(), script = ctx.script, run_id = ctx.run_id,
  })
end

local function set_status(ctx, ch, status)
  if status ~= ch.status then
    ch.status = status
    store_mod.call(ctx.store, "set_status", ch.id, ctx.model.cfg.base_url, status, store_mod.now())
  end
end

-- Polls until the batch ends: its state, or nil, err.
local function wait(ctx, ch)
  local A, poll = ctx.adapter, ctx.poll
  local delay, failures = poll.min, 0
  local deadline = ctx.opts.timeout and loop.now() + ctx.opts.timeout
  while true do
    local st, err = A.poll(ctx, ch.id)
    if st then
      failures = 0
      ch.done = st.done
      set_status(ctx, ch, st.status)
      if ctx.progress then ctx.progress() end
      if st.terminal then return st end
    else
      -- gone, refused for good, or the key is wrong: polling cannot help
      if err.kind == "http" and err.status and err.status < 500 and err.status ~= 429
          and err.status ~= 408 and err.status ~= 409 then
        return nil, err
      end
      if err.quota_exhausted then return nil, err end
      failures = failures + 1
      if failures > ctx.poll_failures then
        err.message = ("%s (%d status checks of batch %s failed in a row; it goes on at the "
          .. "provider: rerun to resume it)"):format(err.message, failures, ch.id)
        return nil, err
      end
    end
    if deadline and loop.now() + delay > deadline then
      return nil, errors.new("timeout", ("batch %s was not done after %g s; it goes on at the "
        .. "provider: rerun to resume it, or llmrun batch cancel %s"):format(ch.id,
        ctx.opts.timeout, ch.id), { batch_id = ch.id })
    end
    loop.sleep(delay)
    delay = math.min(delay * poll.factor, poll.max)
  end
end

local function collect(ctx, ch, st)
  ch.state = st
  if st.error then return fail_items(ch, st.error) end
  local entries, bad = ctx.adapter.results(ctx, st)
  if not entries then return fail_items(ch, bad) end
  for _, it in ipairs(ch.items) do
    local en = entries[it.custom_id]
    it.batch_id, it.batch_status = st.id, st.status
    if not en then
      -- a batch cancelled or expired before it read its input has no line
      -- per request: the request shares the batch's fate
      local code = (bad == 0 and (st.status == "cancelled" or st.status == "canceled") and "batch_cancelled")
        or (bad == 0 and st.status == "expired" and "batch_expired") or "missing"
      it.err = errors.new("batch", bad > 0
        and ("no result for this request in batch %s's output (%d output line%s could not be read)")
          :format(st.id, bad, bad == 1 and "" or "s")
        or ("batch %s ended (%s) with no result for this request"):format(st.id, st.status),
        { code = code, batch_id = st.id, custom_id = it.custom_id })
    elseif en.err then
      it.err = en.err
    else
      it.entry = en
    end
  end
  ch.malformed = bad
end

local function run_chunk(ctx, ch, fresh)
  local A, opts = ctx.adapter, ctx.opts
  local resumed
  if not fresh and opts.resume ~= false then
    local recs = ctx.store and ctx.store:by_hash(ch.hash, 1)
    if recs and recs[1] then
      ch.id, resumed = recs[1].batch_id, "record"
    elseif A.find then
      local found = A.find(ctx, ch.hash)
      if found then
        ch.id, resumed = found.id, "provider"
        record(ctx, ch, found, found.input_file)
      end
    end
  elseif opts.resume == false and ctx.store then
    store_mod.call(ctx.store, "forget", ch.hash)
  end
  if ch.id then
    say(opts, "resuming batch %s (%d requests to %s/%s, found in the %s) instead of submitting them again",
      ch.id, #ch.items, ctx.model.provider, ctx.model.name,
      resumed == "record" and "batch record" or "provider's batch list")
  else
    local st, err, input_file = A.submit(ctx, ch)
    if not st then return fail_items(ch, err) end
    ch.id = st.id
    record(ctx, ch, st, input_file)
    ch.status = st.status
    say(opts, "submitted batch %s: %d requests to %s/%s", ch.id, #ch.items, ctx.model.provider,
      ctx.model.name)
  end
  ch.resumed = resumed ~= nil
  ch.t_submitted = loop.now()
  local st, err = wait(ctx, ch)
  ch.t_ended = loop.now()
  if not st and resumed and err.kind == "http" and err.status == 404 then
    say(opts, "batch %s is gone (HTTP 404): submitting its requests again", ch.id)
    store_mod.call(ctx.store, "forget", ch.hash)
    ch.id, ch.status = nil, nil
    return run_chunk(ctx, ch, true)
  end
  if not st then return fail_items(ch, err) end
  collect(ctx, ch, st)
  ch.t_results = loop.now()
end

--- Sends items ({index=, call=, body=}, calls already begun) as one or
-- more batches and waits: each item gets .entry (an answer) or .err.
-- Returns the batches' summaries. For llm.batch and llm.batch_defer.
function M.send(model, items, opts)
  local A = M.adapter_for(model, 3)
  pipeline.use("batch") -- batch.price
  local log = require "llm.log"
  local ctx = {
    model = model, opts = opts, adapter = A, poll = poll_settings(model, opts),
    retries = opts.max_retries or 4, poll_failures = opts.poll_failures or 20,
    store = store_mod.get(opts.store), run_id = log.run_id(),
    script = type(rawget(_G, "arg")) == "table" and arg[0] and tostring(arg[0]) or nil,
  }
  local t0 = loop.now()
  local chunks = chunks_of(A, model, items, opts)
  local total = 0
  for _, ch in ipairs(chunks) do total = total + #ch.items end
  local bar = opts.progress ~= false and require("llm.progress").auto(total) or nil
  local _ <close> = bar
  if bar then
    ctx.progress = function()
      local done = 0
      for _, ch in ipairs(chunks) do done = done + (ch.done or 0) end
      bar.update(math.min(done, total), total)
    end
  end
  async.map(chunks, function(ch) run_chunk(ctx, ch) end,
    { concurrency = math.max(#chunks, 1), progress = false })
  local out = {}
  for i, ch in ipairs(chunks) do
    local st = ch.state
    out[i] = { id = ch.id, status = st and st.status or ch.status, requests = #ch.items,
      completed = st and st.completed or nil, failed = st and st.failed or nil,
      resumed = ch.resumed or false, malformed_lines = ch.malformed, first = ch.first,
      -- where the time went: building and sending it (or finding it
      -- again), waiting for the provider, fetching and reading the results
      seconds = ch.t_results and { submit = ch.t_submitted - t0, wait = ch.t_ended - ch.t_submitted,
        results = ch.t_results - ch.t_ended } or nil }
  end
  return out
end

--- The response for an item that got an answer.
function M.response_of(model, it, t_end)
  local p, en = it.entry.parsed, it.entry
  local latency = (t_end - it.call.t0) * 1000
  return response.new {
    text = p.text, tool_calls = p.tool_calls, finish_reason = p.finish_reason, usage = p.usage,
    choices = p.choices, logprobs = p.logprobs, ttft_ms = latency, latency_ms = latency,
    model = p.model or model.name, provider = model.provider, simulated = model.simulated,
    request_id = en.request_id, retries = 0, cached = false, _body = en.body, sim_skill = en.sim_skill,
    batch = { id = it.batch_id, custom_id = it.custom_id, status = it.batch_status },
  }
end

-- ---- llm.batch(model, requests, opts) -----------------------------------------------------

local function resolve_model(model)
  if type(model) == "string" then
    require("llm.log").install()
    return require("llm.model").new(model)
  end
  if type(model) ~= "table" or getmetatable(model) ~= require("llm.model").Model then
    error("bad argument #1 to 'llm.batch' (a model or a model name expected, got " .. type(model) .. ")", 3)
  end
  return model
end

-- Ends the calls not finished when llm.batch exits early (its task
-- cancelled, an error raised): as cancelled, so budgets release them.
local finisher_mt = {
  __close = function(f)
    for _, it in ipairs(f.items) do
      if not it.finished then
        it.finished = true
        calls.finish(it.call, nil, errors.new("cancelled", "the batch was abandoned before its results"))
      end
    end
  end,
}

function M.run(model, requests, opts)
  model = resolve_model(model)
  if type(requests) ~= "table" then
    error("bad argument #2 to 'llm.batch' (list of requests expected, got " .. type(requests) .. ")", 2)
  end
  opts = check_opts(opts, "llm.batch")
  M.adapter_for(model, 3)
  local Model = require("llm.model").Model
  local ctx = context.current()
  local items = {}
  local _ <close> = setmetatable({ items = items }, finisher_mt)
  for i = 1, #requests do
    local ok, body = pcall(Model.normalize, requests[i], model.defaults)
    if not ok then error(("llm.batch: requests[%d]: %s"):format(i, tostring(body):gsub("^[^:]*:%d+: ", "")), 2) end
    local case = opts.case and opts.case(i, requests[i])
    if case == nil then case = (ctx and ctx.case) or i end
    local call = calls.begin(model, "chat", body, { tag = opts.tag, case = case, cache = false })
    call.batch = true
    items[i] = { index = i, call = call, body = body }
  end
  local to_send = {}
  for _, it in ipairs(items) do
    -- a budget may refuse a request before it is sent
    local early, early_err = calls.before(it.call)
    if early ~= nil or early_err ~= nil then
      it.resp, it.err, it.decided = early, early_err, true
    else
      it.call.kind = "batch"
      to_send[#to_send + 1] = it
    end
  end
  local summary = #to_send > 0 and M.send(model, to_send, opts) or {}
  local t_end = loop.now()
  local results, errs = { n = #requests, batches = summary }, { count = 0 }
  for i, it in ipairs(items) do
    local resp, err = it.resp, it.err
    if not it.decided and it.entry and not err then resp = M.response_of(model, it, t_end) end
    if resp == nil and err == nil then err = errors.new("batch", "no result for this request", { code = "missing" }) end
    it.finished = true
    resp, err = calls.finish(it.call, resp, err)
    results[i] = resp
    if err ~= nil then
      errs[i] = err
      errs.count = errs.count + 1
    end
  end
  return results, errs
end

-- ---- batches in the record (llmrun batch, scripts) ------------------------------------------

--- The recorded batches, newest first: {batch_id=, status=, requests=,
-- provider=, model=, base_url=, created_at=, ...}. opts.store: the path.
function M.list(n, opts)
  opts = opts or {}
  local st = store_mod.get(opts.store)
  if not st then return {} end
  return st:all(n or 0) or {}
end

-- The record of a batch id (or a unique prefix of one): rec, or nil, err.
local function record_of(id, opts)
  local st = store_mod.get(opts.store)
  local recs = st and st:by_id(id, 2) or {}
  if #recs == 0 then
    return nil, errors.new("batch", ("no batch %s in the batch record"):format(id), { code = "unknown" })
  end
  if #recs > 1 and recs[1].batch_id ~= id and recs[2].batch_id ~= recs[1].batch_id then
    return nil, errors.new("batch", ("%s names several recorded batches: give more of the id"):format(id),
      { code = "ambiguous" })
  end
  return recs[1]
end

-- The model to reach a batch with: opts.model, else the recorded one.
local function context_for(id, opts)
  opts = opts or {}
  local rec, model = nil, opts.model
  if not model then
    local err
    rec, err = record_of(id, opts)
    if not rec then return nil, err end
    require("llm.log").install()
    model = require("llm.model").new { name = rec.model or "batch", provider = rec.provider,
      base_url = rec.base_url }
  elseif type(model) == "string" then
    model = resolve_model(model)
  end
  local A = M.adapter_for(model, 4)
  return { model = model, opts = {}, adapter = A, retries = 4, store = store_mod.get(opts.store) },
    rec and rec.batch_id or id
end

-- Runs the adapter's poll or cancel on a batch and records the state it
-- answers.
local function ask_provider(what, id, opts)
  local ctx, bid = context_for(id, opts)
  if not ctx then return nil, bid end
  local st, err = ctx.adapter[what](ctx, bid)
  if st then store_mod.call(ctx.store, "set_status", bid, ctx.model.cfg.base_url, st.status, store_mod.now()) end
  return st, err
end

--- The provider's state of a batch: {id, status, total, completed,
-- failed, terminal, ...} | nil, err. opts: store, model.
function M.status(id, opts) return ask_provider("poll", id, opts) end

--- Asks the provider to cancel a batch: its state | nil, err.
function M.cancel(id, opts) return ask_provider("cancel", id, opts) end

--- The results of an ended batch: {state =, entries = {custom_id ->
-- {parsed =, ...} | {err =}}, malformed = n} | nil, err.
function M.results(id, opts)
  local ctx, bid = context_for(id, opts)
  if not ctx then return nil, bid end
  local st, err = ctx.adapter.poll(ctx, bid)
  if not st then return nil, err end
  if not st.terminal then
    return nil, errors.new("batch", ("batch %s is %s: its results are not ready"):format(bid, st.status),
      { code = "not_ended", status_name = st.status })
  end
  if st.error then return { state = st, entries = {}, malformed = 0, error = st.error } end
  local entries, bad = ctx.adapter.results(ctx, st)
  if not entries then return nil, bad end
  return { state = st, entries = entries, malformed = bad, model = ctx.model }
end

return setmetatable(M, { __call = function(_, ...) return M.run(...) end })
