-- llm.experiment{...}: run variants of a task on the same cases and
-- compare them, quality next to latency, cost and wall time, each with a
-- confidence interval (llm.report.compare underneath).
--
--   local cmp = llm.experiment {
--     cases = assert(llm.data.jsonl "examples/data/context_qa.jsonl"),
--     variants = {
--       baseline = function(case) return big:chat(prompt(case)) end,
--       small = { run = function(case) return small:chat(prompt(case)) end, concurrency = 8 },
--     },
--     check = function(case, resp) return resp.text == case.answer end,
--   }
--   cmp:print()   cmp:markdown()   cmp:json()   cmp:csv()   cmp:html "out.html"
--
-- spec:
--   cases       list of case tables (an llm.data result); an empty list runs
--               nothing and gives an empty report with a note
--   variants    {name = fn | {run = fn, concurrency = n, tag = s, batch = b}} or a
--               list of {name =, run =, ...} (list order is report order).
--               batch = true (or a table of llm.batch options) runs the
--               variant's cases all at once and sends their m:chat calls
--               through the Batch API (llm.batch_defer), after the other
--               variants; its wall time is its own. fn(case)
--               returns a response, or a table {ok =, score =, response =,
--               error =}; nil, err or a raised error counts as an error of
--               that case (the run goes on)
--   check       fn(case, response, result) -> verdict [, reason [, score]]:
--               a boolean (pass/fail) or a number (a score; it passes at
--               >= pass_score), nil counting as false, and an optional
--               reason string shown per case; the llm.check library gives
--               ready ones. Model calls a check makes (a judge) are tagged
--               "judge:<variant tag>" and costed apart from the variant.
--               If it raises, the case is left out of quality and the
--               report says so
--   expected    field name or fn(case): a case's expected answer, for the
--               per-case view and llm.check's checks (default: the field
--               expected, answer or label)
--   input       field name or fn(case): the input shown per case (default:
--               the field input, question, prompt, query, text or user)
--   pass_score  the score at which a numeric verdict passes (default 0.5)
--   baseline    the variant the others are compared with (default: the first
--               in a list; in a name table "baseline" if there is one,
--               else the first name in sort order)
--   mode        "interleaved" (default): every variant on every case, in an
--               order rotated per case so that drift hits all alike; spec
--               concurrency runs that many (case, variant) units at once.
--               "blocks": each variant over all cases in turn, at its own
--               concurrency (default spec.concurrency or 1): the wall time
--               of "sequential vs parallel" is measured this way
--   batches     blocks mode: split the cases into n runs of consecutive cases
--               (variants alternate between them) so wall time gets an
--               interval from n samples without running the workload n times
--   repeats     run everything this many times (default 1); with k > 1 the
--               report adds pass@k (a case passes in at least one of its
--               k runs), pass^k (in all of them) and the share of flaky
--               cases (passed in some runs, failed in others), per case
--               with intervals; pass_k = j < k estimates pass@j and pass^j
--               from the k runs (the unbiased estimator of Chen et al.
--               2021, HumanEval)
--   warmup      run the first n cases through each variant first, unmeasured
--               (their calls are logged under "<tag>:warmup"; they fill a
--               variant's caches like any other call)
--   concurrency see mode; timeout = seconds per case (a timeout is an error)
--   tags        {variant = tag}: the call log tag (default: the variant name)
--   id          field name or fn(case, i) giving the case id (default
--               case.id, else the index): it pairs variants in the intervals
--   error_score quality of a failed case (default 0; false leaves it out)
--   title, reps, seed, level: passed to llm.report.compare; progress = false
--
-- Every model call a variant makes (also in tasks it spawns, caches and
-- routers) is logged with the variant's tag and the case id: the variant
-- runs inside llm.context.with{tag=, case=} and llm.calls reads them.
-- Rows of the report are cases, not calls: latency is what the variant
-- function took for the case, end to end (cache lookups, escalations and
-- all); TTFT runs from the case's start to the first token of its first
-- model call (a case answered without one: its latency); cost and tokens
-- are the sums over the case's calls.
local cm = require "_llm.metrics"
local loop = require "_llm.loop"
local async = require "llm.async"
local pipeline = require "llm.pipeline"
local context = require "llm.context"
local outcome = require "llm.outcome"
local report = require "llm.report"
local response = require "llm.response"
local cases_view = require "llm.experiment_cases"

local now = loop.now
local OK, ERROR = cm.OK, cm.ERROR

local M = {}

local Comparison = {}
Comparison.__index = Comparison
Comparison.__name = "llm.experiment"
M.Comparison = Comparison

-- ---- per-call accounting ----------------------------------------------------------

-- The record of the case a call belongs to travels in the call's context
-- (a check's calls: the record of that case's check, costed apart).
--- The experiment stage (llm.pipeline): the call counts for its case.
function M.experiment_stage(call, resp, err, partial)
  local ctx = call.context
  local rec = ctx and (ctx._experiment_case or ctx._experiment_check)
  if not rec or rec.closed then return end
  local _, flags, _, ttft, cost, usage, retries = outcome(call, resp, err, partial)
  if not flags then return end -- cancelled (a race's loser): not this case's work
  local hit = flags & cm.HIT ~= 0
  rec.calls = rec.calls + 1
  local model = call.model or {}
  if model.simulated then rec.simulated = rec.simulated + 1 end
  -- the simulator answered from no skill (free text): a check of it means little
  if resp and resp.sim_skill == "filler" then rec.filler = rec.filler + 1 end
  if hit then
    rec.hits = rec.hits + 1
    return
  end
  if flags & ERROR ~= 0 then rec.call_errors = rec.call_errors + 1 end
  local name = tostring(model.name or "?")
  rec.models[name] = (rec.models[name] or 0) + 1
  if cost then rec.cost = rec.cost + cost
  elseif flags & ERROR == 0 or usage then rec.cost_unknown = true end
  if usage then
    rec.prompt = rec.prompt + (usage.prompt_tokens or 0)
    rec.completion = rec.completion + (usage.completion_tokens or 0)
    rec.cached = rec.cached + (usage.cached_tokens or 0)
  end
  rec.retries = rec.retries + (retries or 0)
  if ttft and call.t0 then
    local t = call.t0 + ttft / 1000
    if rec.first_token == nil or t < rec.first_token then rec.first_token = t end
  end
end

local function new_record()
  return { calls = 0, hits = 0, call_errors = 0, simulated = 0, filler = 0, cost = 0, cost_unknown = false,
           prompt = 0, completion = 0, cached = 0, retries = 0, models = {} }
end

-- ---- spec ----------------------------------------------------------------------------

local function callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return type(mt) == "table" and mt.__call ~= nil
end

-- Misuse: raised as a plain message, re-raised by M.new at the caller.
local function fail(msg) error("llm.experiment: " .. msg, 0) end

local function pos_int(v, name, min)
  if v == nil then return nil end
  if math.type(v) ~= "integer" or v < min then
    fail(("%s must be an integer >= %d, got %s"):format(name, min, tostring(v)))
  end
  return v
end

local function variant_of(name, v, spec)
  if callable(v) then v = { run = v } end
  if type(v) ~= "table" or not callable(v.run) then
    fail(("variant %s must be a function or a table with run = function"):format(tostring(name)))
  end
  local tag = (spec.tags and spec.tags[name]) or v.tag or tostring(name)
  if v.batch ~= nil and v.batch ~= false and v.batch ~= true and type(v.batch) ~= "table" then
    fail(("variant %s: batch must be true or a table of llm.batch options"):format(tostring(name)))
  end
  return {
    name = tostring(name), run = v.run, tag = tag,
    batch = v.batch and (v.batch == true and {} or v.batch) or nil,
    concurrency = pos_int(v.concurrency, "variant " .. tostring(name) .. " concurrency", 1),
    collector = cm.collector(), quality = { cases = {} }, hit_arm = { cases = {} },
    calls_arm = { cases = {} }, errors = {}, check_errors = {}, results = {},
    walls = {}, real_cases = 0, sim_calls = 0, totals = new_record(), cases_run = 0,
    check_totals = { calls = 0, cost = 0, cost_unknown = 0, filler = 0 },
    answers = 0, filler = 0,
  }
end

local function variants_of(spec)
  local list = {}
  local vs = spec.variants
  if type(vs) ~= "table" then fail("variants must be a table of name = function") end
  if #vs > 0 then
    for i, v in ipairs(vs) do
      if type(v) ~= "table" or v.name == nil then
        fail(("variants[%d] needs a name (a list of {name =, run =} tables)"):format(i))
      end
      list[i] = variant_of(v.name, v, spec)
    end
  else
    local names = {}
    for k in pairs(vs) do names[#names + 1] = tostring(k) end
    table.sort(names)
    local base = spec.baseline or (vs.baseline ~= nil and "baseline") or nil
    for _, k in ipairs(names) do
      if k == base then table.insert(list, 1, variant_of(k, vs[k], spec))
      else list[#list + 1] = variant_of(k, vs[k], spec) end
    end
  end
  if #list == 0 then fail("no variants to run") end
  local seen = {}
  for _, v in ipairs(list) do
    if seen[v.name] then fail("two variants are named " .. v.name) end
    seen[v.name] = true
  end
  if spec.baseline ~= nil and not seen[tostring(spec.baseline)] then
    fail("baseline names no variant: " .. tostring(spec.baseline))
  end
  return list
end

local function id_of(spec, case, i)
  local id = spec.id
  if id == nil then
    local v = type(case) == "table" and case.id or nil
    return v ~= nil and tostring(v) or tostring(i)
  end
  if type(id) == "string" then
    local v = type(case) == "table" and case[id] or nil
    return v ~= nil and tostring(v) or tostring(i)
  end
  return tostring(id(case, i))
end

-- ---- one case ------------------------------------------------------------------------

local function message_of(err)
  if type(err) == "table" and err.message ~= nil and getmetatable(err) == nil then
    return tostring(err.message)
  end
  local s = tostring(err)
  return (s:gsub("\n.*", "")) -- first line: no traceback in a report
end

-- What a variant returned -> response, result table, error (or nil).
local function unpack_result(a, b)
  if a == nil then
    return nil, nil, b ~= nil and b or "the variant returned nothing (nil)"
  end
  if type(a) == "table" and not response.is(a)
      and (a.ok ~= nil or a.score ~= nil or a.response ~= nil or a.error ~= nil) then
    if a.error ~= nil and a.error ~= false then return a.response, a, a.error end
    return a.response, a, nil
  end
  return a, nil, nil
end

-- A verdict (boolean, number, nil or {pass=, score=, reason=}) ->
-- quality, pass, reason, shown score; nil quality with a message when it
-- is none of those.
local function verdict_of(ex, q, reason, shown)
  if type(q) == "table" and getmetatable(q) == nil and (q.pass ~= nil or q.score ~= nil) then
    q, reason, shown = q.pass, q.reason or reason, q.pass ~= nil and q.score or nil
    if q == nil then q = shown end
  end
  if type(reason) ~= "string" then reason = reason ~= nil and tostring(reason) or nil end
  if q == nil then return 0, false, reason, 0 end
  if type(q) == "boolean" then
    local s = q and 1 or 0
    return s, q, reason, type(shown) == "number" and shown or s
  end
  if type(q) == "number" and q == q then return q, q >= ex.pass_score, reason, q end
  return nil, nil, "check returned a " .. type(q) .. " (boolean or number expected)"
end

-- The check of one case runs in its own context: its calls (a judge's)
-- are tagged "judge:<tag>" and counted in crec, not in the case's record.
-- -> quality, pass, reason, shown score (quality nil: left out), and the
-- check's failure when it raised or returned no verdict
local function score_of(ex, v, case, cid, resp, result, crec)
  if ex.check then
    local cctx = { tag = "judge:" .. v.tag, case = cid, _experiment_case = false,
                   _experiment_check = crec, _experiment_expected = ex.expected,
                   _batch = false } -- a batch variant's checks call at once
    local ok, q, reason, shown = pcall(context.with, cctx, ex.check, case, resp, result)
    crec.closed = true
    if not ok then
      local msg = message_of(q)
      return nil, nil, "check failed: " .. msg, nil, msg
    end
    local quality, pass, why, s = verdict_of(ex, q, reason, shown)
    return quality, pass, why, s, quality == nil and why or nil
  end
  if result then
    local why = type(result.reason) == "string" and result.reason or nil
    if type(result.score) == "number" then
      local pass = result.ok
      if pass == nil then pass = result.score >= ex.pass_score end
      return result.score, pass and true or false, why, result.score
    elseif result.ok ~= nil then
      return result.ok and 1 or 0, result.ok and true or false, why, result.ok and 1 or 0
    end
  end
  return nil
end

-- Runs variant v on one case -> the case's row, plain data (an experiment
-- spread over workers sends it to the coordinator, llm.experiment_workers).
-- measured = false for warm-up runs (tagged "<tag>:warmup"): nothing.
local function compute_case(ex, v, case, cid, measured, index)
  local rec = new_record()
  rec.log_rows = ex.collect_log and {} or nil
  local ctx = { tag = measured and v.tag or (v.tag .. ":warmup"), case = cid, _experiment_case = rec }
  local t0 = now()
  local ok, a, b
  if ex.timeout then
    ok, a, b = pcall(async.with_timeout, ex.timeout, context.with, ctx, v.run, case)
  else
    ok, a, b = pcall(context.with, ctx, v.run, case)
  end
  local elapsed = (now() - t0) * 1000
  rec.closed = true
  if not measured then return nil end
  local resp, result, err
  if ok then resp, result, err = unpack_result(a, b) else err = a end

  local ttft = rec.first_token and (rec.first_token - t0) * 1000 or nil
  if err == nil and ttft == nil then ttft = elapsed end -- a whole answer, no model call
  local score, pass, reason, shown, check_error
  local crec = new_record()
  crec.log_rows = rec.log_rows and {} or nil
  if err ~= nil then
    pass, reason = false, "error: " .. message_of(err)
  else
    score, pass, reason, shown, check_error = score_of(ex, v, case, cid, resp, result, crec)
  end
  local log
  if rec.log_rows then
    log = rec.log_rows
    for _, row in ipairs(crec.log_rows) do log[#log + 1] = row end
  end
  return {
    case = cid, index = index, elapsed = elapsed, ttft = ttft,
    cost = not rec.cost_unknown and rec.cost or nil,
    prompt = rec.prompt, completion = rec.completion, cached = rec.cached, retries = rec.retries,
    -- answered from cache: the response it returned is a hit (a semantic
    -- hit still paid for an embedding call), or every call it made was one
    from_cache = (type(resp) == "table" and resp.cached and true) or (rec.hits > 0 and rec.hits == rec.calls),
    calls = rec.calls, hits = rec.hits, simulated = rec.simulated, call_errors = rec.call_errors,
    models = rec.models, error = err, response = resp, result = result,
    score = score, pass = pass, reason = reason, shown = shown, check_error = check_error,
    check_calls = crec.calls, check_hits = crec.hits, check_cost = crec.cost,
    check_cost_unknown = crec.cost_unknown, check_filler = crec.filler, log = log,
    -- an answer, and whether the simulator made it up from no skill (its filler note)
    answered = response.is(resp), filler = response.is(resp) and resp.sim_skill == "filler",
  }
end

-- Adds a case's row (compute_case's, here or on a worker) to variant v.
local function record_case(v, row)
  local cid, err = row.case, row.error
  v.collector:add(err == nil and OK or ERROR, row.elapsed, row.ttft, row.cost, nil, row.prompt,
    row.completion, row.cached, row.retries, cid)
  local n = #v.hit_arm + 1
  v.hit_arm[n], v.hit_arm.cases[n] = row.from_cache and 1 or 0, cid
  v.calls_arm[n], v.calls_arm.cases[n] = row.calls - row.hits, cid
  -- a case is simulated unless it reached a real provider (one that made
  -- no call at all counts as simulated once the variant made any simulated call)
  if row.calls > row.simulated then v.real_cases = v.real_cases + 1 end
  v.sim_calls = v.sim_calls + row.simulated
  v.cases_run = v.cases_run + 1
  if err ~= nil then
    v.errors[#v.errors + 1] = { case = cid, message = message_of(err), error = err }
  end
  if row.check_error ~= nil then
    v.check_errors[#v.check_errors + 1] = { case = cid, message = row.check_error }
  end
  v.results[#v.results + 1] = { case = cid, index = row.index, score = row.score, pass = row.pass,
    reason = row.reason, shown_score = row.shown, error = err, latency_ms = row.elapsed,
    response = row.response, result = row.result, calls = row.calls, hits = row.hits, cost = row.cost,
    check_calls = row.check_calls, check_cost = not row.check_cost_unknown and row.check_cost or nil }
  v.check_totals.calls = v.check_totals.calls + row.check_calls - row.check_hits
  v.check_totals.cost = v.check_totals.cost + row.check_cost
  v.check_totals.filler = v.check_totals.filler + (row.check_filler or 0)
  if row.answered then
    v.answers = v.answers + 1
    if row.filler then v.filler = v.filler + 1 end
  end
  if row.check_cost_unknown then v.check_totals.cost_unknown = v.check_totals.cost_unknown + 1 end
  -- per-variant totals over calls
  local t = v.totals
  t.calls, t.hits, t.call_errors = t.calls + row.calls, t.hits + row.hits, t.call_errors + row.call_errors
  for name, k in pairs(row.models) do t.models[name] = (t.models[name] or 0) + k end
end

local function run_case(ex, v, case, cid, measured, index)
  local row = compute_case(ex, v, case, cid, measured, index)
  if row then record_case(v, row) end
end

-- ---- modes ---------------------------------------------------------------------------

local function progress_for(ex, total)
  if ex.progress == false then return nil end
  return require("llm.progress").auto(total)
end

local function semaphores(variants)
  local sems = {}
  for _, v in ipairs(variants) do
    if v.concurrency then sems[v] = async.semaphore(v.concurrency) end
  end
  return sems
end

-- Interleaved mode's (variant, case) units, in run order: every variant
-- on every case, rotated per case so that drift hits all alike.
local function interleaved_units(ex, variants, ncases)
  local units, nv = {}, #variants
  for rep = 1, ex.repeats do
    for i = 1, ncases do
      for k = 0, nv - 1 do
        units[#units + 1] = { v = variants[(i + rep + k - 2) % nv + 1], i = i }
      end
    end
  end
  return units
end

-- Blocks mode's batches: nb runs of consecutive case indexes, sizes
-- differing by at most one.
local function block_batches(ex, ncases)
  local nb = math.min(ex.batches, ncases)
  local batches = {}
  for b = 1, nb do
    local lo, hi = (b - 1) * ncases // nb + 1, b * ncases // nb
    local idx = {}
    for i = lo, hi do idx[#idx + 1] = i end
    batches[b] = idx
  end
  return batches
end

local function run_interleaved(ex, variants, cases, ids)
  local units = interleaved_units(ex, variants, #cases)
  local sems = semaphores(variants)
  local progress <close> = progress_for(ex, #units)
  local done = 0
  async.map(units, function(u)
    local sem = sems[u.v]
    if sem then sem:with(run_case, ex, u.v, cases[u.i], ids[u.i], true, u.i)
    else run_case(ex, u.v, cases[u.i], ids[u.i], true, u.i) end
    done = done + 1
    if progress then progress.update(done, #units) end
  end, { concurrency = ex.concurrency or 1, progress = false })
end

local function run_blocks(ex, variants, cases, ids)
  local batches = block_batches(ex, #cases)
  local total = ex.repeats * #cases * #variants
  local progress <close> = progress_for(ex, total)
  local done, nv = 0, #variants
  for rep = 1, ex.repeats do
    for b, idx in ipairs(batches) do
      for k = 0, nv - 1 do
        local v = variants[(rep + b + k - 2) % nv + 1]
        local t0 = now()
        async.map(idx, function(i)
          run_case(ex, v, cases[i], ids[i], true, i)
          done = done + 1
          if progress then progress.update(done, total) end
        end, { concurrency = v.concurrency or ex.concurrency or 1, progress = false })
        -- one batch's wall time, scaled to a whole pass over the cases
        v.walls[#v.walls + 1] = (now() - t0) * #cases / #idx
      end
    end
  end
end

-- A batch variant: every case (and repeat) at once inside a collector,
-- so their calls go out as batches; its wall time is the whole run's.
local function run_batch_variant(ex, v, cases, ids, progress, counter)
  local defer = require "llm.batch_defer"
  local units = {}
  for _ = 1, ex.repeats do
    for i = 1, #cases do units[#units + 1] = i end
  end
  local col = defer.collector(v.batch)
  local t0 = now()
  local ok, err = pcall(async.map, units, function(i)
    col:run(run_case, ex, v, cases[i], ids[i], true, i)
    counter.done = counter.done + 1
    if progress then progress.update(counter.done, counter.total) end
  end, { concurrency = math.max(#units, 1), progress = false })
  col:close()
  if not ok then error(err, 0) end
  v.walls[#v.walls + 1] = (now() - t0) / ex.repeats
  v.batch_summary = col:summary()
end

local function warm_up(ex, variants, cases, ids)
  local n = math.min(ex.warmup or 0, #cases)
  if n == 0 then return end
  for _, v in ipairs(variants) do
    local idx = {}
    for i = 1, n do idx[i] = i end
    async.map(idx, function(i) run_case(ex, v, cases[i], ids[i], false) end,
      { concurrency = v.concurrency or ex.concurrency or 1, progress = false })
  end
end

-- ---- the comparison ------------------------------------------------------------------

local function plural(n, word) return ("%d %s%s"):format(n, word, n == 1 and "" or "s") end

local function models_line(models)
  local names = {}
  for name in pairs(models) do names[#names + 1] = name end
  table.sort(names, function(a, b) return models[a] > models[b] or (models[a] == models[b] and a < b) end)
  local parts = {}
  for _, name in ipairs(names) do parts[#parts + 1] = ("%s %d"):format(name, models[name]) end
  return table.concat(parts, ", ")
end

local function build(ex, variants, cases, wall)
  local ncases = #cases
  local has_quality = false
  for _, v in ipairs(variants) do
    for _, r in ipairs(v.results) do if r.score ~= nil then has_quality = true end end
  end
  if ex.check then has_quality = true end
  local rv, hit_arms, call_arms = {}, {}, {}
  for i, v in ipairs(variants) do
    local q
    if has_quality then
      q = { cases = {} }
      for _, r in ipairs(v.results) do
        local s = r.score
        if r.error ~= nil and ex.error_score ~= false then s = ex.error_score or 0 end
        if s ~= nil then
          local n = #q + 1
          q[n], q.cases[n] = s, r.case
        end
      end
    end
    local wall
    if #v.walls == 1 then wall = v.walls[1] elseif #v.walls > 1 then wall = v.walls end
    local sim = v.sim_calls > 0 and v.cases_run - v.real_cases or 0
    rv[i] = { name = v.name, collector = v.collector, quality = q, wall_s = wall, simulated = sim }
    hit_arms[v.name], call_arms[v.name] = v.hit_arm, v.calls_arm
  end
  local extra = {
    { key = "model_calls", label = "model calls per case", unit = "calls", mode = "ratio",
      better = "lower", stat = "mean", arms = call_arms },
    { key = "hit_rate", label = "answered from cache", unit = "%", mode = "diff",
      better = "higher", stat = "mean", arms = hit_arms },
  }
  -- what the checks' own calls (a judge's) cost, apart from the variants'
  local check_calls, check_arms = 0, {}
  for _, v in ipairs(variants) do
    check_calls = check_calls + v.check_totals.calls
    local arm = { cases = {} }
    for _, r in ipairs(v.results) do
      if r.check_cost ~= nil then arm[#arm + 1], arm.cases[#arm + 1] = r.check_cost, r.case end
    end
    check_arms[v.name] = arm
  end
  if check_calls > 0 then
    extra[#extra + 1] = { key = "check_cost", label = "judge cost (checks' calls)", unit = "USD", mode = "ratio",
      better = "lower", stat = "total", arms = check_arms }
  end
  local repeat_notes = {}
  if ex.repeats > 1 and has_quality then
    local defs
    defs, repeat_notes = cases_view.repeat_metrics(variants, ex.repeats, ex.pass_k or ex.repeats)
    for _, d in ipairs(defs) do extra[#extra + 1] = d end
  end
  local rep = report.compare {
    title = ex.title or "experiment", variants = rv, baseline = variants[1].name,
    reps = ex.reps, seed = ex.seed, level = ex.level, count_label = "cases",
    extra_metrics = extra,
  }
  -- what the rows mean, then what happened per variant
  local notes = {}
  if ncases == 0 then
    notes[1] = "no cases: the case list was empty, nothing was run"
  else
    notes[#notes + 1] = ("%s, %s%s, %s mode%s; rows are cases: latency is a variant's end-to-end time "
      .. "per case (cache hits included), TTFT from the case's start to its first token, cost and "
      .. "tokens the sums over its calls"):format(plural(ncases, "case"), plural(#variants, "variant"),
      ex.repeats > 1 and (" × " .. ex.repeats .. " repeats") or "", ex.mode,
      ex.mode == "blocks" and ex.batches > 1 and (" in " .. ex.batches .. " batches (wall time: "
        .. "each batch's time scaled to the whole set; interval over batches)") or "")
    if ex.mode == "interleaved" then
      notes[#notes + 1] = ("wall time is the whole run's (%.2f s): interleaved variants share the clock; "
        .. "use mode = \"blocks\" to time each variant"):format(wall)
    end
  end
  for _, v in ipairs(variants) do
    local t = v.totals
    if v.cases_run > 0 then
      notes[#notes + 1] = ("%s: %s, %s%s%s"):format(v.name, plural(t.calls - t.hits, "model call"),
        plural(t.hits, "cache hit"), t.call_errors > 0 and (", " .. plural(t.call_errors, "failed call")) or "",
        next(t.models) and (" (" .. models_line(t.models) .. ")") or "")
    end
    if v.batch_summary then
      local bs, ids_ = v.batch_summary.batches, {}
      local nreq = 0
      for _, b in ipairs(bs) do
        nreq = nreq + (b.requests or 0)
        ids_[#ids_ + 1] = tostring(b.id) .. (b.resumed and " (resumed)" or "")
      end
      notes[#notes + 1] = ("%s: Batch API, at batch prices: %s in %s (%s)%s; its wall time is its "
        .. "own, from submission to the last result"):format(v.name, plural(nreq, "request"),
        #bs == 1 and "1 batch" or (#bs .. " batches"), #ids_ > 0 and table.concat(ids_, ", ") or "none",
        v.batch_summary.rounds > 1 and (", " .. v.batch_summary.rounds .. " rounds") or "")
    end
    if #v.errors > 0 then
      local e = v.errors[1]
      notes[#notes + 1] = ("%s: %d of %d cases failed (first: case %s: %s)"):format(v.name, #v.errors,
        v.cases_run, e.case, e.message)
    end
    if #v.check_errors > 0 then
      local e = v.check_errors[1]
      notes[#notes + 1] = ("%s: check failed on %s, left out of quality (first: case %s: %s)"):format(
        v.name, plural(#v.check_errors, "case"), e.case, e.message)
    end
    local ct = v.check_totals
    if ct.calls > 0 then
      notes[#notes + 1] = ("%s: its checks made %s (tag judge:%s), costing %s%s, not counted in its cost")
        :format(v.name, plural(ct.calls, "model call"), v.tag, ("$%.6f"):format(ct.cost),
          ct.cost_unknown > 0 and (" + " .. plural(ct.cost_unknown, "case") .. " of unknown cost") or "")
    end
  end
  for _, n in ipairs(repeat_notes) do notes[#notes + 1] = n end
  -- answers the simulator made up from no skill: said first, and on stderr,
  -- so that nobody reads their 0% as a measurement
  local filler_notes = M.filler_notes(variants)
  for i = #filler_notes, 1, -1 do table.insert(notes, 1, filler_notes[i]) end
  if ncases > 0 then
    notes[#notes + 1] = "each case's answers, verdicts and reasons: cmp:cases():print() (and the HTML report's case table)"
  end
  for _, n in ipairs(rep.notes) do notes[#notes + 1] = n end
  rep.notes = notes
  local by_name = {}
  for _, v in ipairs(variants) do
    by_name[v.name] = { name = v.name, tag = v.tag, results = v.results, errors = v.errors,
      check_errors = v.check_errors, calls = v.totals.calls, hits = v.totals.hits,
      models = v.totals.models, walls = v.walls }
  end
  return setmetatable({ report = rep, variants = by_name, order = rv, ncases = ncases, mode = ex.mode,
    wall_s = wall, simulated = rep.simulated, _ex = ex, _cases = cases, _variants = variants }, Comparison)
end

--- Notes for variants whose answers (or whose judge's answers) were the
-- simulator's filler text: a check on them measures nothing.
function M.filler_notes(variants)
  local out = {}
  for _, v in ipairs(variants) do
    if v.filler > 0 then
      out[#out + 1] = ("%s: %d of %d answers were filler: the simulator has no skill for these "
        .. "prompts; register the task with llm.sim.task or use a real provider (README \"The "
        .. "simulator's model\")"):format(v.name, v.filler, v.answers)
    end
    local jf = v.check_totals.filler
    if jf > 0 then
      out[#out + 1] = ("%s: %d of %s were filler, not verdicts: the simulator's judge grades only "
        .. "a task registered with llm.sim.task or an answer with a reference answer")
        :format(v.name, jf, plural(v.check_totals.calls, "judge answer"))
    end
  end
  return out
end

-- ---- entry -----------------------------------------------------------------------------

local modes = { interleaved = true, blocks = true }

local function settings(spec)
  local cases = spec.cases
  if cases == nil then
    fail("cases is nil (if it comes from llm.data.jsonl or csv, that read failed: wrap it in assert(...) to see why)")
  end
  if type(cases) ~= "table" then fail("cases must be a list of cases, got " .. type(cases)) end
  if spec.check ~= nil and not callable(spec.check) then fail("check must be a function") end
  local ex = {
    check = spec.check, title = spec.title or spec.name, reps = spec.reps, seed = spec.seed,
    level = spec.level, progress = spec.progress,
    mode = spec.mode or "interleaved",
    repeats = pos_int(spec.repeats, "repeats", 1) or 1,
    warmup = pos_int(spec.warmup, "warmup", 0) or 0,
    batches = pos_int(spec.batches, "batches", 1) or 1,
    concurrency = pos_int(spec.concurrency, "concurrency", 1),
    error_score = spec.error_score,
    timeout = spec.timeout,
    pass_score = spec.pass_score == nil and 0.5 or spec.pass_score,
    pass_k = pos_int(spec.pass_k, "pass_k", 1),
    claim_after = spec.claim_after, redis_wait = spec.redis_wait,
  }
  if not modes[ex.mode] then fail("mode must be \"interleaved\" or \"blocks\", got " .. tostring(ex.mode)) end
  if ex.timeout ~= nil and (type(ex.timeout) ~= "number" or ex.timeout <= 0) then
    fail("timeout must be a number of seconds > 0")
  end
  if ex.error_score ~= nil and ex.error_score ~= false and type(ex.error_score) ~= "number" then
    fail("error_score must be a number or false")
  end
  if spec.id ~= nil and type(spec.id) ~= "string" and not callable(spec.id) then
    fail("id must be a field name or a function(case, i)")
  end
  for _, k in ipairs { "expected", "input" } do
    if spec[k] ~= nil and type(spec[k]) ~= "string" and not callable(spec[k]) then
      fail(k .. " must be a field name or a function(case)")
    end
  end
  if type(ex.pass_score) ~= "number" then fail("pass_score must be a number") end
  if ex.pass_k ~= nil and ex.pass_k > ex.repeats then
    fail(("pass_k (%d) must not exceed repeats (%d)"):format(ex.pass_k, ex.repeats))
  end
  if spec.expected ~= nil then
    -- llm.check's checks read the same expected answer (see llm.check)
    local e = spec.expected
    ex.expected = type(e) == "string" and function(case) return type(case) == "table" and case[e] or nil end or e
  end
  ex.input = spec.input
  return ex, cases, variants_of(spec)
end

--- llm.experiment(spec) -> comparison (see the top of this file)
function M.new(spec)
  if type(spec) ~= "table" then
    error("bad argument #1 to 'llm.experiment' (table expected, got " .. type(spec) .. ")", 2)
  end
  local ok, ex, cases, variants = pcall(settings, spec)
  if not ok then error(ex, 2) end
  pipeline.use("experiment")
  local ids = {}
  for i, case in ipairs(cases) do ids[i] = id_of(spec, case, i) end
  -- spread over workers through Redis (llm.experiment_workers): this
  -- process enqueues the cases and waits, or, as `llmrun worker`, serves them
  local workers = require "llm.experiment_workers"
  local how, url = workers.plan(spec)
  if how and #cases > 0 then
    return workers.run(how, url, ex, cases, variants, ids, M._internal)
  end
  if #cases == 0 then
    io.stderr:write("llm.experiment: no cases to run (the case list is empty); the report is empty\n")
    return build(ex, variants, cases, 0)
  end
  local sync, batched = {}, {}
  for _, v in ipairs(variants) do
    if v.batch then batched[#batched + 1] = v else sync[#sync + 1] = v end
  end
  warm_up(ex, sync, cases, ids)
  local t0 = now()
  if #sync > 0 then
    if ex.mode == "blocks" then run_blocks(ex, sync, cases, ids)
    else run_interleaved(ex, sync, cases, ids) end
  end
  local wall = now() - t0
  if #batched > 0 then
    local counter = { done = 0, total = ex.repeats * #cases * #batched }
    local progress <close> = progress_for(ex, counter.total)
    for _, v in ipairs(batched) do run_batch_variant(ex, v, cases, ids, progress, counter) end
  end
  local cmp = build(ex, variants, cases, #sync > 0 and wall or now() - t0)
  for _, n in ipairs(M.filler_notes(variants)) do io.stderr:write("llm.experiment: ", n, "\n") end
  return cmp
end

-- What llm.experiment_workers needs to run cases elsewhere and report
-- them here like a local run.
M._internal = { compute_case = compute_case, record_case = record_case, build = build,
  warm_up = warm_up, interleaved_units = interleaved_units, block_batches = block_batches,
  semaphores = semaphores, message_of = message_of }

-- ---- the comparison's face ---------------------------------------------------------------

function Comparison:print(opts) return self.report:print(opts) end
function Comparison:text(opts) return self.report:text(opts) end
function Comparison:markdown() return self.report:markdown() end
function Comparison:json() return self.report:json() end
function Comparison:csv() return self.report:csv() end
function Comparison:data() return self.report:data() end
--- cmp:cases() -> rows: one per case, in case order: {id, input (shortened),
-- expected, case, failed, disagree, flaky, variants = {[name] = {output,
-- pass, passes, runs, score, reason, error, cost, latency_ms, check_cost}}};
-- rows:print{failures=, disagreements=}, rows:text{...}, rows:filter{...},
-- rows:json() (see llm.experiment_cases)
function Comparison:cases()
  if not self._rows then self._rows = cases_view.rows(self._ex, self._cases, self._variants) end
  return self._rows
end
-- the HTML report carries the per-case table
function Comparison:html(path)
  self.report.case_rows = self:cases()
  return self.report:html(path)
end
function Comparison:html_string()
  self.report.case_rows = self:cases()
  return self.report:html_string()
end
--- cmp:metric(key) -> the report row ("quality", "latency_p50", "cost", "wall", ...)
function Comparison:metric(key) return self.report:metric(key) end
--- cmp:stats(name) -> the report's stats table of a variant (per case)
function Comparison:stats(name)
  for _, v in ipairs(self.report.variants) do if v.name == name then return v.stats end end
end
--- cmp:summary([keys]) -> text: one line per variant, one column per metric
-- (value and its 95% interval), narrower than the full report when there
-- are many variants. keys default to accuracy/quality, latency p50 and
-- p95, cost, model calls per case, answered from cache and wall time.
function Comparison:summary(keys)
  local text = require "llm.report_text"
  keys = keys or { "quality", "latency_p50", "latency_p95", "cost", "model_calls", "hit_rate", "wall" }
  local rows = {}
  for _, k in ipairs(keys) do
    local row = self.report:metric(k)
    if row then rows[#rows + 1] = row end
  end
  local lines = { { "variant" } }
  for _, row in ipairs(rows) do lines[1][#lines[1] + 1] = text.label_of(row) end
  for _, v in ipairs(self.report.variants) do
    local cells = { v.name }
    for _, row in ipairs(rows) do
      local value, ci = row.values[v.name], row.ci[v.name]
      local cell = text.fmt_value(value, row.unit)
      if value ~= nil and ci and ci.lo and ci.hi then
        cell = ("%s [%s, %s]"):format(cell, text.fmt_value(ci.lo, row.unit), text.fmt_value(ci.hi, row.unit))
      end
      cells[#cells + 1] = cell
    end
    lines[#lines + 1] = cells
  end
  local widths = {}
  for _, cells in ipairs(lines) do
    for i, c in ipairs(cells) do widths[i] = math.max(widths[i] or 0, utf8.len(c) or #c) end
  end
  local out = {}
  for _, cells in ipairs(lines) do
    local parts = {}
    for i, c in ipairs(cells) do parts[i] = c .. (" "):rep(widths[i] - (utf8.len(c) or #c)) end
    out[#out + 1] = (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  return table.concat(out, "\n") .. "\n"
end

Comparison.__tostring = function(c) return c.report:text { color = false } end

return setmetatable(M, { __call = function(_, spec) return M.new(spec) end })
