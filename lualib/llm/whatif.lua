-- What-if on recorded traffic: `llmrun replay run.cassette --script s.lua`.
--
-- A recorded run's calls, in the order they began, go through a
-- candidate strategy, and the recording (before) is compared with what
-- the strategy would have done (after): calls to the provider, tokens
-- and cost (exact), latency (from the recorded timings), quality (as
-- agreement with the recorded answers, where it can be known).
--
-- A strategy is a Lua file that returns a table (or defines the same
-- names as globals), the shape the proxy's strategies take:
--
--   return {
--     name = "mini for short questions",
--     -- each recorded request; req = {model=, provider=, endpoint=, kind=
--     -- "chat"|"stream"|"embed", body={messages=, max_tokens=, ...}, tag=,
--     -- case=}. Return nil (send it as recorded), a request table (send
--     -- this instead: another model, a shorter prompt), or a response
--     -- table with `text` (or `vectors`) to answer without a call (a cache).
--     on_request = function(req) ... end,
--     -- after each request is answered: resp = {text=, usage=, cost=,
--     -- latency_ms=, source=}; a cache stores it here
--     on_response = function(req, resp) ... end,
--     -- optional: the quality of an answer; default: it agrees with the
--     -- recorded answer after llm.check.normalize
--     check = function(req, resp, recorded) -> boolean | score in [0, 1] end,
--   }
--
-- How each request is answered, and how exactly it is known:
--   unchanged        the recorded outcome, as it was (exact)
--   recorded         changed into a request the recording also made (the
--                    same canonical form, e.g. the other model of a
--                    cascade): that recorded outcome (exact)
--   strategy         answered by on_request without a call: no tokens,
--                    no cost, its latency_ms or 0
--   sim / live       changed, sent to the simulator (--sim, answers from
--                    its skills, usage counted) or the provider (--live)
--   estimated        changed, neither flag: prompt tokens counted exactly
--                    (llm.tokens), completion tokens as the original's,
--                    no answer (quality not measured)
-- Cost: before and after both at today's prices (llm.pricing), so a price
-- change since the recording does not pass for a saving; the recorded
-- cost is shown too, and `--reprice TARGET` adds both at other prices.
-- Latency of a changed request: the recording's own per-model time to
-- first token and time per output token (medians; the original call's
-- when the model was not recorded), for the new token counts.
local json = require "_llm.json"
local canon = require "llm.cache_canon"
local cassette = require "llm.cassette"

local M = {}

-- ---- the strategy --------------------------------------------------------------------

--- Loads a strategy file -> {name=, on_request=, on_response=, check=}.
function M.load_strategy(path)
  local env = setmetatable({}, { __index = _G })
  local chunk, err = loadfile(path, "t", env)
  if not chunk then return nil, err end
  local ok, res = pcall(chunk)
  if not ok then return nil, ("%s: %s"):format(path, tostring(res)) end
  local s = type(res) == "table" and res or env
  local strategy = {
    name = s.name or path:match("([^/]+)%.lua$") or path,
    on_request = s.on_request, on_response = s.on_response, check = s.check,
  }
  if type(strategy.on_request) ~= "function" and type(strategy.on_response) ~= "function" then
    return nil, path .. ": a strategy returns a table with on_request (and on_response), or defines them"
  end
  return strategy
end

-- ---- reading the recording --------------------------------------------------------------

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = deep_copy(x) end
  return t
end

local function median(list)
  if #list == 0 then return nil end
  table.sort(list)
  local n = #list
  return n % 2 == 1 and list[(n + 1) // 2] or (list[n // 2] + list[n // 2 + 1]) / 2
end

-- Recorded time to first token and time per output token, per model.
local function timing_profiles(rows)
  local by = {}
  for _, r in ipairs(rows) do
    if r.status == "ok" and not r.cache and r.latency_ms and r.kind ~= "embed" then
      local p = by[r.model] or { ttft = {}, tpot = {} }
      by[r.model] = p
      local ttft = r.ttft_ms or r.latency_ms
      p.ttft[#p.ttft + 1] = ttft
      local n = r.completion_tokens or 0
      if n > 1 and r.ttft_ms and r.latency_ms > r.ttft_ms then
        p.tpot[#p.tpot + 1] = (r.latency_ms - r.ttft_ms) / (n - 1)
      end
    end
  end
  local out = {}
  for m, p in pairs(by) do out[m] = { ttft = median(p.ttft), tpot = median(p.tpot) or 0 } end
  return out
end

local function read(cas)
  local rows, err = cas:query([[SELECT c.*, r.canon FROM calls c LEFT JOIN requests r
    ON r.id = c.request ORDER BY c.id]])
  if not rows then return nil, err end
  -- canonical text -> the first recorded call that went out with it
  local by_canon = {}
  for _, r in ipairs(rows) do
    if r.canon and not r.cache and r.status == "ok" and not by_canon[r.canon] then by_canon[r.canon] = r end
  end
  return rows, by_canon
end

-- ---- one request ------------------------------------------------------------------------------

local function usage_of(r)
  return { prompt_tokens = r.prompt_tokens or 0, completion_tokens = r.completion_tokens or 0,
           cached_tokens = r.cached_tokens, cache_creation_tokens = r.cache_creation_tokens,
           input_tokens = r.input_tokens }
end

-- The price of a usage for a model today (nil: no price).
local function price(model, usage, cached)
  if cached then return 0 end
  if not usage then return nil end
  local pricing = require "llm.pricing"
  if not pricing.get(model) then return nil end
  return pricing.cost(model, usage, { quiet = true })
end

local function is_response(t)
  return type(t) == "table" and (type(t.text) == "string" or type(t.vectors) == "table")
end

-- A stand-in for an llm.model with what cache_canon needs.
local function model_like(req)
  local endpoint = req.endpoint or ""
  return { name = req.model, provider = req.provider, simulated = endpoint == "sim",
           cfg = { base_url = endpoint } }
end

local function canonical(req)
  local kind = req.kind == "embed" and "embed" or "chat"
  return canon.request(model_like(req), kind, req.body or {})
end

local function agree(a, b)
  if type(a) ~= "string" or type(b) ~= "string" then return nil end
  local normalize = require("llm.check").normalize
  return normalize(a) == normalize(b)
end

-- Answers a changed request that the recording did not make.
local function answer_changed(req, orig, opts, profiles)
  local kind = req.kind
  if opts.sim or opts.live then
    local m = llm.model(opts.sim and { name = req.model, provider = "sim", headers = { ["x-sim-profile"] = "zero" } }
      or { name = req.model, provider = req.provider })
    local r, err
    if kind == "embed" then
      r, err = m:embed(req.body.input or {}, { dimensions = req.body.dimensions })
    else
      r, err = m:chat(req.body)
    end
    if not r then return { source = opts.sim and "sim" or "live", error = tostring(err), usage = nil } end
    local usage = r.usage or {}
    local out = { source = opts.sim and "sim" or "live", text = r.text, usage = usage }
    if opts.live then
      out.latency_ms, out.ttft_ms = r.latency_ms, r.ttft_ms
    else
      local p = profiles[req.model] or { ttft = orig.ttft_ms or orig.latency_ms or 0,
        tpot = (orig.completion_tokens or 0) > 1 and orig.ttft_ms and orig.latency_ms
          and (orig.latency_ms - orig.ttft_ms) / (orig.completion_tokens - 1) or 0 }
      out.latency_ms = (p.ttft or 0) + math.max(0, (usage.completion_tokens or 0) - 1) * (p.tpot or 0)
      out.latency_estimated = true
    end
    return out
  end
  -- neither: an estimate from the tokens the new request has
  local prompt
  if kind == "embed" then
    prompt = 0
    for _, t in ipairs(req.body.input or {}) do prompt = prompt + llm.tokens.count(t, req.model) end
  else
    local ok, n = pcall(llm.tokens.chat, req.body.messages or {}, req.model)
    prompt = ok and n or orig.prompt_tokens or 0
  end
  local completion = orig.completion_tokens or 0
  local p = profiles[req.model]
  local latency
  if p then
    latency = (p.ttft or 0) + math.max(0, completion - 1) * (p.tpot or 0)
  else
    latency = orig.latency_ms
  end
  return { source = "estimated", usage = { prompt_tokens = prompt, completion_tokens = completion },
           latency_ms = latency, latency_estimated = true }
end

-- ---- the run -----------------------------------------------------------------------------------

local function new_side()
  return { calls = 0, upstream = 0, prompt = 0, completion = 0, cost = 0, cost_unknown = 0,
           latency = {}, latency_sum = 0, errors = 0 }
end

local function add(side, usage, cost, latency, upstream, failed)
  side.calls = side.calls + 1
  if upstream then side.upstream = side.upstream + 1 end
  if failed then side.errors = side.errors + 1 end
  if usage then
    side.prompt = side.prompt + (usage.prompt_tokens or 0)
    side.completion = side.completion + (usage.completion_tokens or 0)
  end
  if cost then side.cost = side.cost + cost elseif upstream then side.cost_unknown = side.cost_unknown + 1 end
  if latency then
    side.latency[#side.latency + 1] = latency
    side.latency_sum = side.latency_sum + latency
  end
end

local function pct(list, q)
  if #list == 0 then return nil end
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  return s[math.max(1, math.ceil(q * #s))]
end

--- M.run(path, strategy, opts) -> result | nil, err
-- opts: sim, live (answer changed requests), reprice (a target for
-- llm.pricing.reprice), limit (the first N calls only).
function M.run(path, strategy, opts)
  opts = opts or {}
  local cas, err = cassette.open(path)
  if not cas then return nil, err end
  local rows, by_canon = read(cas)
  if not rows then
    cas:close()
    return nil, by_canon
  end
  local profiles = timing_profiles(rows)
  local before, after = new_side(), new_side()
  local sources = { unchanged = 0, recorded = 0, strategy = 0, sim = 0, live = 0, estimated = 0 }
  local quality = { compared = 0, agreed = 0, score = 0, exact = 0, measured = 0, unknown = 0 }
  local before_records, after_records = {}, {}
  local t0 = os.clock()
  local n = 0
  for _, r in ipairs(rows) do
    if opts.limit and n >= opts.limit then break end
    n = n + 1
    -- before: as recorded, at today's prices
    local upstream = r.cache == nil and r.status ~= "cancelled"
    local bu = usage_of(r)
    local bcost = price(r.model, bu, r.cache ~= nil)
    add(before, bu, bcost, r.latency_ms, upstream, r.status == "error")
    before_records[#before_records + 1] = { model = r.model, provider = r.provider, prompt_tokens = bu.prompt_tokens,
      completion_tokens = bu.completion_tokens, cached_tokens = bu.cached_tokens, cost = bcost, cache = r.cache }
    before.recorded_cost = (before.recorded_cost or 0) + (r.cost or 0)

    -- after: through the strategy
    local req
    if r.canon then
      local ok, c = pcall(json.decode, r.canon)
      if ok and type(c) == "table" then
        req = { model = c.model, provider = c.provider, endpoint = c.endpoint, kind = r.kind,
                body = type(c.body) == "table" and c.body or {}, tag = r.tag, case = r.case_id }
      end
    end
    local out
    if req and strategy.on_request then
      local ok, res = pcall(strategy.on_request, deep_copy(req))
      if not ok then
        cas:close()
        return nil, ("the strategy's on_request failed on call %d: %s"):format(r.id, tostring(res))
      end
      out = res
    end
    local resp
    if out == nil or not req then
      resp = { source = "unchanged", text = r.answer, usage = bu, latency_ms = r.latency_ms,
               cached = r.cache ~= nil, upstream = upstream, failed = r.status == "error" }
    elseif is_response(out) then
      resp = { source = "strategy", text = out.text, usage = out.usage, latency_ms = out.latency_ms or 0,
               cached = true }
    else
      local new = { model = out.model or req.model, provider = out.provider or req.provider,
                    endpoint = out.endpoint or req.endpoint, kind = out.kind or req.kind,
                    body = out.body or req.body, tag = req.tag, case = req.case }
      local text = canonical(new)
      if text == r.canon then
        resp = { source = "unchanged", text = r.answer, usage = bu, latency_ms = r.latency_ms,
                 cached = r.cache ~= nil, upstream = upstream, failed = r.status == "error" }
      elseif text and by_canon[text] then
        local o = by_canon[text]
        resp = { source = "recorded", text = o.answer, usage = usage_of(o), latency_ms = o.latency_ms,
                 upstream = true, model = o.model }
      else
        resp = answer_changed(new, r, opts, profiles)
        resp.upstream = true
        resp.failed = resp.error ~= nil
      end
      req = new
    end
    sources[resp.source] = sources[resp.source] + 1
    local model = resp.model or (req and req.model) or r.model
    local acost = resp.source == "strategy" and 0 or price(model, resp.usage, resp.cached)
    resp.cost = acost
    add(after, resp.usage, acost, resp.latency_ms, resp.upstream and true or false, resp.failed)
    local au = resp.usage or {}
    after_records[#after_records + 1] = { model = model, provider = req and req.provider or r.provider,
      prompt_tokens = au.prompt_tokens, completion_tokens = au.completion_tokens, cached_tokens = au.cached_tokens,
      cost = acost, cache = resp.cached and "strategy" or nil }

    -- quality: agreement with the recorded answer (or the strategy's check)
    if r.kind ~= "embed" and r.answer then
      if resp.source == "unchanged" then
        quality.compared, quality.agreed, quality.score, quality.exact =
          quality.compared + 1, quality.agreed + 1, quality.score + 1, quality.exact + 1
      elseif resp.text ~= nil then
        local v
        if strategy.check then
          local ok, res = pcall(strategy.check, req, resp, { text = r.answer })
          v = ok and res or nil
        else
          v = agree(resp.text, r.answer)
        end
        if v ~= nil then
          local score = type(v) == "number" and v or (v and 1 or 0)
          quality.compared, quality.score = quality.compared + 1, quality.score + score
          if score >= 0.5 then quality.agreed = quality.agreed + 1 end
          if resp.source == "recorded" or resp.source == "strategy" then
            quality.exact = quality.exact + 1
          else
            quality.measured = quality.measured + 1
          end
        else
          quality.unknown = quality.unknown + 1
        end
      else
        quality.unknown = quality.unknown + 1
      end
    end
    if strategy.on_response and req then
      local ok, res = pcall(strategy.on_response, req, resp)
      if not ok then
        cas:close()
        return nil, ("the strategy's on_response failed on call %d: %s"):format(r.id, tostring(res))
      end
    end
  end
  local elapsed = os.clock() - t0
  local result = {
    cassette = path, recorded = cas:recorded_date(), providers = cas:providers_text(),
    strategy = strategy.name, calls = n, before = before, after = after, sources = sources,
    quality = quality, cpu_s = elapsed, changed_by = opts.live and "live" or opts.sim and "sim" or "estimated",
    prices = require("llm.pricing").source().synced,
  }
  if opts.reprice then
    local pricing = require "llm.pricing"
    local target = type(opts.reprice) == "string" and pricing.parse_target and pricing.parse_target(opts.reprice)
      or opts.reprice
    local b, berr = pricing.reprice(before_records, target)
    local a = b and pricing.reprice(after_records, target)
    if not b then
      cas:close()
      return nil, "--reprice: " .. tostring(berr)
    end
    result.reprice = { target = tostring(opts.reprice), before = b.after, after = a and a.after }
  end
  cas:close()
  return result
end

-- ---- the report ------------------------------------------------------------------------------------

local function money(v) return v and ("$%.6g"):format(v) or "unknown" end
local function ms(v) return v and ("%.0f ms"):format(v) or "-" end
local function ratio(a, b)
  if not a or not b or a == 0 then return "" end
  return ("%.2fx"):format(b / a)
end

--- The result as text.
function M.text(res)
  local b, a, s, q = res.before, res.after, res.sources, res.quality
  local out = {}
  out[#out + 1] = ("llmrun replay: what-if on %s (recorded %s from %s)"):format(res.cassette, res.recorded,
    res.providers)
  out[#out + 1] = ("strategy: %s; %d recorded calls; changed requests answered %s"):format(res.strategy,
    res.calls, res.changed_by == "estimated" and "by estimates (no --sim or --live)"
    or res.changed_by == "sim" and "by the simulator (--sim)" or "by the provider (--live)")
  out[#out + 1] = ""
  local fmt = "%-34s %16s %16s %10s"
  out[#out + 1] = fmt:format("", "recorded", "strategy", "change")
  out[#out + 1] = fmt:format("calls", b.calls, a.calls, "")
  out[#out + 1] = fmt:format("calls to a provider", b.upstream, a.upstream, ratio(b.upstream, a.upstream))
  out[#out + 1] = fmt:format("prompt tokens", b.prompt, a.prompt, ratio(b.prompt, a.prompt))
  out[#out + 1] = fmt:format("completion tokens", b.completion, a.completion, ratio(b.completion, a.completion))
  out[#out + 1] = fmt:format(("cost (prices of %s)"):format(res.prices), money(b.cost), money(a.cost),
    ratio(b.cost, a.cost))
  out[#out + 1] = fmt:format("cost as recorded", money(b.recorded_cost), "", "")
  if res.reprice then
    out[#out + 1] = fmt:format("cost repriced as " .. res.reprice.target, money(res.reprice.before),
      money(res.reprice.after), ratio(res.reprice.before, res.reprice.after))
  end
  out[#out + 1] = fmt:format("latency p50 per call", ms(pct(b.latency, 0.5)), ms(pct(a.latency, 0.5)), "")
  out[#out + 1] = fmt:format("latency p95 per call", ms(pct(b.latency, 0.95)), ms(pct(a.latency, 0.95)), "")
  out[#out + 1] = fmt:format("latency, all calls in a row", ms(b.latency_sum), ms(a.latency_sum),
    ratio(b.latency_sum, a.latency_sum))
  local qa = q.compared > 0 and ("%.1f%%"):format(q.score / q.compared * 100) or "not measured"
  out[#out + 1] = fmt:format("agreement with recorded answers", "100.0%", qa, "")
  out[#out + 1] = ""
  out[#out + 1] = ("how the strategy's requests were answered: %d unchanged (recorded answer), %d changed "
    .. "into a recorded request, %d by the strategy itself, %d simulated, %d live, %d estimated")
    :format(s.unchanged, s.recorded, s.strategy, s.sim, s.live, s.estimated)
  out[#out + 1] = ("quality: %d answers compared with the recording (%d exactly: unchanged or recorded; %d "
    .. "measured with %s), %d not measured%s"):format(q.compared, q.exact, q.measured,
    res.changed_by == "estimated" and "--sim/--live" or ("--" .. res.changed_by), q.unknown,
    q.unknown > 0 and res.changed_by == "estimated" and " (changed requests: add --sim or --live)" or "")
  if a.cost_unknown > 0 or b.cost_unknown > 0 then
    out[#out + 1] = ("note: %d recorded and %d strategy calls have no known price (left out of cost)")
      :format(b.cost_unknown, a.cost_unknown)
  end
  out[#out + 1] = ("latency: recorded per call; for changed requests estimated from the recording's per-model "
    .. "time to first token and per output token. Evaluated in %.3f s of CPU (%.0f calls/s)."):format(res.cpu_s,
    res.calls / math.max(res.cpu_s, 1e-9))
  return table.concat(out, "\n") .. "\n"
end

--- The result as JSON (sorted keys).
function M.json(res)
  local b, a = res.before, res.after
  local function side(x)
    return { calls = x.calls, upstream = x.upstream, prompt_tokens = x.prompt, completion_tokens = x.completion,
             cost = x.cost, cost_unknown = x.cost_unknown, recorded_cost = x.recorded_cost,
             latency_p50_ms = pct(x.latency, 0.5), latency_p95_ms = pct(x.latency, 0.95),
             latency_sum_ms = x.latency_sum, errors = x.errors }
  end
  local q = res.quality
  return canon.encode {
    cassette = res.cassette, recorded = res.recorded, providers = res.providers, strategy = res.strategy,
    calls = res.calls, before = side(b), after = side(a), sources = res.sources,
    quality = { compared = q.compared, agreement = q.compared > 0 and q.score / q.compared or nil,
                exact = q.exact, measured = q.measured, not_measured = q.unknown },
    changed_by = res.changed_by, prices = res.prices, reprice = res.reprice,
  } .. "\n"
end

return M
