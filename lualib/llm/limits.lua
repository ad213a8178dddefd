-- llm.limits: pacing under a provider account's rate limits, so a big run
-- goes out at the limit instead of firing everything and retrying 429s.
--
--   llm.limits.set("openai/gpt-4o", { rpm = 500, tpm = 30000, max_concurrency = 32 })
--   llm.model { "claude-sonnet-4-5", limits = { itpm = 40000, otpm = 8000 } }
--   llm.limits.stats() -> { {key=, model=, rpm=, tpm=, itpm=, otpm=, concurrency=,
--                           in_flight=, queued=, waiting_for=, paused_s=, admitted=,
--                           rate_limited=, refused=, waited_s=, learned={...}}, ... }
--   llm.limits.enable(false)   -- pacing off (retries only), e.g. to compare
--
-- Limits: rpm, tpm, itpm / otpm (Anthropic's input / output token limits),
-- max_concurrency; burst (the bucket's cap as a fraction of a limit,
-- default 0.005), completion_tokens (what a request without max_tokens is
-- expected to generate, default 1024), learn (default true: limits,
-- remaining counts and retry-after from the provider's headers), refund
-- (default true: a call gives back what its real usage left of its
-- reservation; false for a provider that counts prompt + max_tokens and
-- keeps it, as OpenAI documents its token estimate),
-- redis / on_error / processes (shared by every process, llm.limits_redis).
-- They apply per (provider, base URL, API key, model): two llm.model objects
-- for the same account and model share one limiter. Where they come from,
-- later ones winning field by field: LLMRUN_LIMITS_FILE (a Lua file that
-- returns { ["provider/model"] = {...}, ... }), LLMRUN_LIMITS
-- ("gpt-4o:rpm=500,tpm=30000;claude-sonnet-4-5:itpm=40000"), then
-- llm.limits.set, then a model's own `limits`. Names: "provider/model",
-- "model", or "*" (every model). With nothing set, a model's limiter
-- learns from the headers (x-ratelimit-*, anthropic-ratelimit-*): the
-- limits the provider states become its buckets. A limit set by the user
-- and a lower one stated by the provider: the lower wins.
--
-- The pacing stage (llm.pipeline "before 50", after the cache, before the
-- budget) reserves before a call is sent: one request, and its prompt
-- tokens (llm.tokens; for Claude, whose tokenizer is not public, an
-- estimate: 3 + per message 4 + bytes / 3.5) plus max_tokens (or
-- completion_tokens, plus a reasoning model's expected reasoning tokens,
-- llm.route.expected_reasoning). It waits, first come first served,
-- until every bucket and the concurrency window admit it. The settle
-- stage (finish, no waiting) refunds the difference to the real usage;
-- a call never sent (refused later, cancelled while waiting, failed with
-- 429) gets everything back. A request that can never fit (its
-- reservation above a per-minute limit) fails at once with err.kind
-- "limit". A 429 with retry-after pauses the whole limiter (every queued
-- call for the key), and counts as an overload for the concurrency window
-- (llm.limits_bucket: the buckets' algorithm, and why no window edge can
-- admit a double burst).
local loop = require "_llm.loop"
local errors = require "llm.errors"
local pipeline = require "llm.pipeline"
local bucket = require "llm.limits_bucket"

local M = {}

M.DEFAULT_COMPLETION_TOKENS = 1024
M.CLAUDE_BYTES_PER_TOKEN = 3.5
M.MAX_LIMIT = 1e12        -- a stated limit above this is garbage, ignored
M.MAX_PAUSE = 60          -- seconds: a longer retry-after is a quota, not a pause

local now, sleep, spawn, suspend, wake, current = loop.now, loop.sleep, loop.spawn,
  loop.suspend, loop.wake, loop.current
local isyieldable = coroutine.isyieldable

local enabled = os.getenv("LLMRUN_PACING") ~= "0"
local specs = {}           -- name -> spec (llm.limits.set, the environment, the file)
local limiters = {}        -- key -> limiter
local by_model = setmetatable({}, { __mode = "k" })  -- model table -> limiter
local env_loaded = false

-- kind of bucket -> the spec field, and how it is shown
local KINDS = { requests = "rpm", tokens = "tpm", input_tokens = "itpm", output_tokens = "otpm" }
local LABEL = { requests = "RPM", tokens = "TPM", input_tokens = "ITPM", output_tokens = "OTPM" }
M.KINDS = KINDS

local FIELDS = { rpm = "limit", tpm = "limit", itpm = "limit", otpm = "limit",
  max_concurrency = "count", burst = "fraction", completion_tokens = "count",
  learn = "boolean", refund = "boolean", redis = "string", on_error = "string", processes = "count" }

-- ---- specs -------------------------------------------------------------------------------

local function check_spec(spec, where, level)
  if type(spec) ~= "table" then
    error(("%s: limits must be a table, got %s"):format(where, type(spec)), level + 1)
  end
  for k, v in pairs(spec) do
    local want = FIELDS[k]
    if not want then
      error(("%s: unknown limit '%s' (known: rpm, tpm, itpm, otpm, max_concurrency, burst, "
        .. "completion_tokens, learn, refund, redis, on_error, processes)"):format(where, tostring(k)), level + 1)
    end
    local ok
    if want == "limit" then ok = type(v) == "number" and v > 0 and v <= M.MAX_LIMIT
    elseif want == "count" then ok = math.type(v) == "integer" and v >= 1
    elseif want == "fraction" then ok = type(v) == "number" and v > 0 and v <= 1
    elseif want == "boolean" then ok = type(v) == "boolean"
    else ok = type(v) == "string" end
    if not ok then
      error(("%s: %s must be %s, got %s"):format(where, k, ({ limit = "a number > 0 (per minute)",
        count = "an integer >= 1", fraction = "a number in (0, 1]", boolean = "true or false",
        string = "a string" })[want], tostring(v)), level + 1)
    end
  end
  if spec.on_error ~= nil and spec.on_error ~= "fail" and spec.on_error ~= "local" then
    error(where .. ": on_error must be \"fail\" or \"local\"", level + 1)
  end
  if spec.on_error == "local" and not spec.processes then
    error(where .. ": on_error = \"local\" needs processes = N: how many processes share the "
      .. "limits, so each goes on with 1/N of them", level + 1)
  end
  if (spec.on_error or spec.processes) and not spec.redis then
    error(where .. ": on_error and processes apply to limits shared through Redis (redis = URL)", level + 1)
  end
  return spec
end
M.check_spec = check_spec

--- "gpt-4o:rpm=500,tpm=30000;claude-x:itpm=1000" -> { [name] = spec }
function M.parse_env(s)
  local out = {}
  for item in s:gmatch("[^;]+") do
    local name, rest = item:match("^%s*([^:%s]+)%s*:%s*(.-)%s*$")
    if not name then error("LLMRUN_LIMITS: expected NAME:FIELD=VALUE[,...], got '" .. item .. "'", 0) end
    local spec = {}
    for f, v in rest:gmatch("([%w_]+)%s*=%s*([^,%s]+)") do
      local n = tonumber(v)
      if v == "true" or v == "false" then spec[f] = v == "true"
      elseif n then spec[f] = math.tointeger(n) or n
      else spec[f] = v end
    end
    out[name] = check_spec(spec, "LLMRUN_LIMITS (" .. name .. ")", 1)
  end
  return out
end

local function load_env()
  if env_loaded then return end
  env_loaded = true
  local file = os.getenv("LLMRUN_LIMITS_FILE")
  if file and file ~= "" then
    local chunk, err = loadfile(file, "t", {})
    if not chunk then error("LLMRUN_LIMITS_FILE: " .. tostring(err), 0) end
    local t = chunk()
    if type(t) ~= "table" then error("LLMRUN_LIMITS_FILE: the file must return a table of limits by model", 0) end
    for name, spec in pairs(t) do
      specs[name] = check_spec(spec, "LLMRUN_LIMITS_FILE (" .. tostring(name) .. ")", 1)
    end
  end
  local s = os.getenv("LLMRUN_LIMITS")
  if s and s ~= "" then
    for name, spec in pairs(M.parse_env(s)) do
      local into = specs[name] or {}
      for k, v in pairs(spec) do into[k] = v end
      specs[name] = into
    end
  end
end

-- ---- limiters ----------------------------------------------------------------------------

local Limiter = {}
Limiter.__index = Limiter
M.Limiter = Limiter

local function key_hash(api_key)
  if type(api_key) ~= "string" or api_key == "" then return "-" end
  -- FNV-1a of the key: enough to tell two keys apart; never the key itself
  local h = 2166136261
  for i = 1, #api_key do h = ((h ~ api_key:byte(i)) * 16777619) & 0xffffffff end
  return ("%08x"):format(h)
end
M.key_hash = key_hash

local function merged_spec(model)
  load_env()
  local out = {}
  for _, name in ipairs { "*", model.name, model.provider .. "/" .. model.name } do
    local s = specs[name]
    if s then for k, v in pairs(s) do out[k] = v end end
  end
  if model.limits then for k, v in pairs(model.limits) do out[k] = v end end
  return out
end

-- What the limiter is configured with: the spec's limits, lowered by the
-- limits the provider stated.
function Limiter:apply(t)
  t = t or now()
  for kind, field in pairs(KINDS) do
    local user, stated = self.spec[field], self.learned[kind]
    local eff = user
    if stated and (not eff or stated < eff) then eff = stated end
    local b = self.buckets[kind]
    if eff and self.shared then
      self.limits[kind] = eff
    elseif eff then
      self.limits[kind] = eff
      if b then
        if b.limit ~= eff then b:set_limit(eff, t) end
      else
        self.buckets[kind] = bucket.bucket(eff, self.spec.burst, t)
      end
    else
      self.limits[kind], self.buckets[kind] = nil, nil
    end
  end
  self.window:set_max(self.spec.max_concurrency)
end

local function new_limiter(key, model, spec)
  local host = (model.cfg and model.cfg.base_url or ""):match("^%a+://([^/]+)") or "?"
  local lim = setmetatable({
    key = key, model = model.name, provider = model.provider,
    display = ("%s/%s @ %s"):format(model.provider, model.name, host),
    spec = spec, learned = {}, limits = {}, buckets = {},
    window = bucket.window(spec.max_concurrency),
    q = {}, head = 1, tail = 0, paused_until = -math.huge,
    admitted = 0, refused = 0, rate_limited = 0, waited_s = 0, waits = 0,
  }, Limiter)
  lim:apply()
  if spec.redis then require("llm.limits_redis").attach(lim, spec) end
  return lim
end

--- The limiter of a model (made on first use).
function M.for_model(model)
  local lim = by_model[model]
  if lim then return lim end
  local cfg = model.cfg or {}
  local key = table.concat({ model.provider, cfg.base_url or "", key_hash(cfg.api_key), model.name }, "|")
  local spec = merged_spec(model)
  lim = limiters[key]
  if not lim then
    lim = new_limiter(key, model, spec)
    limiters[key] = lim
  elseif model.limits then
    -- a model's own limits (re)configure its key's limiter
    for k, v in pairs(spec) do lim.spec[k] = v end
    lim:apply()
    if spec.redis and not lim.shared then require("llm.limits_redis").attach(lim, lim.spec) end
  end
  by_model[model] = lim
  return lim
end

--- llm.limits.set(name, spec): limits for "provider/model", "model" or
-- "*"; limiters already made for matching models take them at once.
function M.set(name, spec)
  if type(name) ~= "string" or name == "" then
    error("bad argument #1 to 'llm.limits.set' (a model name, \"provider/model\" or \"*\")", 2)
  end
  load_env()
  specs[name] = check_spec(spec, "llm.limits.set", 2)
  pipeline.install()
  for _, lim in pairs(limiters) do
    if name == "*" or name == lim.model or name == lim.provider .. "/" .. lim.model then
      for k, v in pairs(spec) do lim.spec[k] = v end
      lim:apply()
      if spec.redis and not lim.shared then require("llm.limits_redis").attach(lim, lim.spec) end
    end
  end
end

--- Forgets every limit, limiter and learned value (tests).
function M.reset()
  for _, lim in pairs(limiters) do
    if lim.timer then lim.timer:cancel() end
  end
  specs, limiters = {}, {}
  by_model = setmetatable({}, { __mode = "k" })
  env_loaded = false
end

--- Pacing on or off (off: calls go as they come, 429s are only retried).
function M.enable(on)
  enabled = on ~= false
end
function M.enabled() return enabled end

-- ---- estimating a call -------------------------------------------------------------------

-- llm.budget's estimates, loaded with the first one (a run without
-- limits or a budget never loads it)
local function text_bytes(v, depth) return require("llm.budget").text_bytes(v, depth) end

local function is_claude(model)
  return model.format and model.format.name == "anthropic" or model.name:find("^claude") ~= nil
end

local tokens_mod
local function prompt_tokens(call)
  local body, model = call.body or {}, call.model
  if call.kind == "embed" then
    local n = 0
    for _, t in ipairs(body.input or {}) do n = n + math.ceil(#t / 4) + 1 end
    return n
  end
  if is_claude(model) then
    local n = 3
    for _, m in ipairs(body.messages or {}) do
      n = n + 4 + math.ceil(text_bytes(m, 0) / M.CLAUDE_BYTES_PER_TOKEN)
    end
    if body.system then n = n + math.ceil(text_bytes(body.system, 0) / M.CLAUDE_BYTES_PER_TOKEN) end
    return n
  end
  if tokens_mod == nil then
    local ok, t = pcall(require, "llm.tokens")
    tokens_mod = ok and t or false
  end
  if tokens_mod then
    local ok, n = pcall(tokens_mod.chat, body.messages, model.name)
    if ok and type(n) == "number" then return n end
  end
  return require("llm.budget").approx_chat_tokens(body.messages)
end

local function completion_tokens(call, lim)
  if call.kind == "embed" then return 0 end
  local body = call.body or {}
  local n = body.max_completion_tokens or body.max_tokens
  -- a number from JSON (the gateway's bodies) is a float: 10.0
  if type(n) == "number" and n > 0 and n < math.huge then return math.ceil(n) end
  n = lim.spec.completion_tokens or M.DEFAULT_COMPLETION_TOKENS
  local ok, r = pcall(function()
    return require("llm.route").expected_reasoning(call.model.name, nil, body)
  end)
  if ok and math.type(r) == "integer" and r > 0 then n = n + r end
  return n
end

--- The reservation of a call: {requests=1, tokens=, input_tokens=, output_tokens=}.
function M.cost_of(call, lim)
  local p = prompt_tokens(call)
  local c = completion_tokens(call, lim)
  return { requests = 1, tokens = p + c, input_tokens = p, output_tokens = c }
end

-- ---- admission ---------------------------------------------------------------------------

-- 0 when the entry may go now (and then it is charged), else the seconds
-- to wait (nil: until a call in flight ends) and why.
local function try_admit(lim, e, t)
  if lim.paused_until > t then return lim.paused_until - t, "pause" end
  if not lim.window:room() then return nil, "concurrency" end
  if not lim.shared then
    local w, why = 0, nil
    for kind, b in pairs(lim.buckets) do
      local x = b:wait(e.cost[kind], t)
      if x > w then w, why = x, kind end
    end
    if w > 0 then return w, why end
    for kind, b in pairs(lim.buckets) do b:take(e.cost[kind], t) end
    e.charged = true
  end
  lim.window.in_flight = lim.window.in_flight + 1
  e.slot = true
  return 0
end

local grant

local function schedule(lim, at)
  if lim.timer and lim.timer_at <= at + 1e-4 then return end
  if lim.timer then lim.timer:cancel() end
  lim.timer_at = at
  lim.timer = spawn(function()
    local d = at - now()
    if d > 0 then sleep(d) end
    lim.timer, lim.timer_at = nil, nil
    grant(lim)
  end)
end

-- Lets in the waiting calls that may go now, first come first served;
-- never waits (the settle stage calls it).
grant = function(lim)
  local t = now()
  while lim.head <= lim.tail do
    local e = lim.q[lim.head]
    if e.cancelled then
      lim.q[lim.head] = nil
      lim.head = lim.head + 1
    else
      local w, why = try_admit(lim, e, t)
      if w ~= 0 then
        lim.waiting_for = why
        if w then schedule(lim, t + w) end
        return
      end
      lim.q[lim.head] = nil
      lim.head = lim.head + 1
      e.granted = true
      wake(e.task)
    end
  end
  lim.waiting_for = nil
  if lim.timer then
    lim.timer:cancel()
    lim.timer, lim.timer_at = nil, nil
  end
end
M._grant = grant

-- What a call gave back when it ends (or is cancelled): its slot, and
-- the tokens it did not use.
local function release(lim, e, usage, sent, failed_429)
  if e.released then return end
  e.released = true
  local t = now()
  if e.slot then lim.window.in_flight = lim.window.in_flight - 1 end
  local back = {}
  if not sent or failed_429 then
    for kind, c in pairs(e.cost) do back[kind] = c end
  elseif usage and lim.spec.refund ~= false then
    local p = tonumber(usage.prompt_tokens) or 0
    local c = tonumber(usage.completion_tokens) or 0
    local real = { requests = 1, tokens = p + c, input_tokens = p, output_tokens = c }
    for kind, r in pairs(e.cost) do back[kind] = math.max(0, r - real[kind]) end
  end
  if e.charged then
    for kind, amount in pairs(back) do
      local b = lim.buckets[kind]
      if b then b:give(amount, t) end
    end
  elseif lim.shared and (e.shared_id or e.offline) then
    lim.shared:refund(e, back)
  end
  grant(lim)
end

local guard_mt = {
  __close = function(g)
    local e = g.e
    if e.done then return end
    e.cancelled = true
    if e.granted then release(g.lim, e, nil, false)
    else grant(g.lim) end -- drops it from the queue (and the timer, if it was the last)
  end,
}

local function never_fits(lim, cost)
  for kind, field in pairs(KINDS) do
    local limit = lim.limits[kind]
    if limit and cost[kind] > limit then
      return ("this request needs %d %s (%s) and the limit for %s is %s per minute: it can never "
        .. "be sent within it (lower max_tokens, shorten the prompt, or raise the limit)"):format(
        cost[kind], kind:gsub("_", " "), kind == "requests" and "one request"
          or kind == "output_tokens" and "max_tokens" or kind == "input_tokens" and "the prompt"
          or "prompt + max_tokens", lim.display, math.tointeger(limit) or limit), field, limit
    end
  end
end

--- The pacing stage (before, 50): waits for the limiter's room.
local function pace_stage(call)
  if not enabled then return nil end
  local model = call.model
  if not model or not model.cfg or call.batch then return nil end
  -- a call a batch variant defers goes out in a Batch API request
  local ctx = call.context
  if ctx and ctx._batch then return nil end
  local lim = by_model[model] or M.for_model(model)
  if next(lim.limits) == nil and lim.window.limit == math.huge and lim.paused_until <= now()
      and not lim.shared then
    -- nothing known yet: the call goes; its headers may teach the limits
    lim.window.in_flight = lim.window.in_flight + 1
    call.pace = { lim = lim, t_start = now(), fast = true }
    return nil
  end
  local cost = M.cost_of(call, lim)
  for kind, c in pairs(cost) do
    local limit = lim.limits[kind]
    if limit and kind ~= "requests" and c > limit and kind ~= "input_tokens" then
      -- an estimate above the limit without max_tokens: reserve what fits
      local body = call.body or {}
      if not (body.max_tokens or body.max_completion_tokens) and kind == "tokens" then
        cost.tokens = math.max(cost.input_tokens, math.floor(limit))
      elseif not (body.max_tokens or body.max_completion_tokens) and kind == "output_tokens" then
        cost.output_tokens = math.floor(limit)
      end
    end
  end
  local why, field, limit = never_fits(lim, cost)
  if why then
    lim.refused = lim.refused + 1
    return nil, errors.new("limit", why, { limit = limit, which = field, model = model.name })
  end
  local e = { cost = cost, t_start = now() }
  call.pace = e
  e.lim = lim
  local t0 = e.t_start
  if lim.head > lim.tail and try_admit(lim, e, t0) == 0 then
    -- the fast path: nobody waits and there is room
  elseif not isyieldable() then
    -- a caller that cannot wait goes at once (into the buckets' debt)
    for kind, b in pairs(lim.buckets) do b:take(cost[kind], t0) end
    e.charged = true
    lim.window.in_flight = lim.window.in_flight + 1
    e.slot = true
  else
    e.task = current()
    lim.tail = lim.tail + 1
    lim.q[lim.tail] = e
    local g <close> = setmetatable({ e = e, lim = lim }, guard_mt)
    if lim.head == lim.tail then grant(lim) end
    while not e.granted do suspend() end
    e.done = true
    lim.waits = lim.waits + 1
    lim.waited_s = lim.waited_s + (now() - t0)
  end
  e.done = true
  if lim.shared then
    local ok, err = lim.shared:reserve(e)
    if not ok then
      release(lim, e, nil, false)
      call.pace = nil
      return nil, err
    end
  end
  lim.admitted = lim.admitted + 1
  e.t_start = now()
  return nil
end

-- ---- learning ------------------------------------------------------------------------------

local function sane(v)
  return type(v) == "number" and v == v and v >= 0 and v <= M.MAX_LIMIT
end

--- Corrects the limiter from a parsed rate-limit table (llm.ratelimit_headers).
function Limiter:learn(rl, t)
  if not rl or self.spec.learn == false then return end
  t = t or now()
  local changed = false
  for kind in pairs(KINDS) do
    local r = rl[kind]
    if type(r) == "table" then
      if sane(r.limit) and r.limit >= 1 and self.learned[kind] ~= r.limit then
        self.learned[kind] = r.limit
        changed = true
      end
    end
  end
  if changed then self:apply(t) end
  -- a remaining count above the buckets' small cap changes nothing: only
  -- a provider nearly out (other clients of the key) lowers the level
  for kind in pairs(KINDS) do
    local r, b = rl[kind], self.buckets[kind]
    if type(r) == "table" and sane(r.remaining) then
      if b and r.remaining < b.cap then b:correct(r.remaining, t) end
      local limit = self.limits[kind]
      if self.shared and limit and r.remaining < limit * (self.spec.burst or bucket.DEFAULT_BURST) then
        self.shared:correct(kind, r.remaining)
      end
    end
  end
end

--- A 429 / 529 / overloaded reply to a call in flight (Model:send tells
-- it before retrying): pause the limiter for the retry-after the server
-- asked, and shrink the concurrency window. -> seconds to wait (or nil).
function Limiter:rejected(e, status, headers, err, scale)
  local t = now()
  local pause
  if status == 429 then
    self.rate_limited = self.rate_limited + 1
    local d = require("llm.retry").server_delay(headers, loop.wallclock())
    if d and d > 0 and d <= M.MAX_PAUSE then
      pause = d * (scale or 1)
      if t + pause > self.paused_until then self.paused_until = t + pause end
      if self.shared then self.shared:pause(pause) end
    end
  end
  self.window:overload(e and e.t_start, t)
  if err and err.ratelimit then self:learn(err.ratelimit, t) end
  return pause
end

--- Waits until a pause of the limiter is over (a retry inside Model:send).
function Limiter:wait_pause()
  local left = self.paused_until - now()
  if left > 0 and isyieldable() then sleep(left) end
end

-- ---- the settle stage ------------------------------------------------------------------------

local function overloaded(err)
  if not err then return false end
  if err.quota_exhausted then return false end
  local s = err.status
  return s == 429 or s == 529 or s == 503 or (type(err.message) == "string"
    and err.message:lower():find("overloaded", 1, true) ~= nil)
end

local function settle_stage(call, resp, err, partial)
  local e = call.pace
  if not e then return end
  call.pace = nil
  local lim = e.lim
  local r = resp or partial
  if r and r.cached then r = nil end
  local rl = (r and rawget(r, "ratelimit")) or (err and err.ratelimit)
  if rl then lim:learn(rl) end
  local sent = call.retries ~= nil
  if err and overloaded(err) then
    -- a 429 seen in Model:send already counted (same t_start: ignored here)
    lim.window:overload(e.t_start, now())
  elseif resp and sent then
    lim.window:success()
  end
  if e.fast then -- nothing was reserved: only its slot
    lim.window.in_flight = lim.window.in_flight - 1
    if lim.head <= lim.tail then grant(lim) end
    return
  end
  release(lim, e, r and r.usage, sent, err and err.status == 429)
end

M.pace_stage = pace_stage
M.settle_stage = settle_stage

-- ---- stats and the progress line ---------------------------------------------------------------

local function round(v) return v and (math.tointeger(v) or v) end

--- One table per limiter (see the top of this file).
function M.stats()
  local out = {}
  local t = now()
  for _, lim in pairs(limiters) do
    local w = lim.window
    out[#out + 1] = {
      key = lim.display, model = lim.model, provider = lim.provider,
      rpm = round(lim.limits.requests), tpm = round(lim.limits.tokens),
      itpm = round(lim.limits.input_tokens), otpm = round(lim.limits.output_tokens),
      learned = { rpm = lim.learned.requests, tpm = lim.learned.tokens,
                  itpm = lim.learned.input_tokens, otpm = lim.learned.output_tokens },
      max_concurrency = lim.spec.max_concurrency,
      concurrency = w.limit ~= math.huge and math.floor(w.limit) or nil,
      in_flight = w.in_flight, queued = lim.tail - lim.head + 1,
      waiting_for = lim.waiting_for and (LABEL[lim.waiting_for] or lim.waiting_for) or nil,
      paused_s = lim.paused_until > t and lim.paused_until - t or 0,
      admitted = lim.admitted, refused = lim.refused, rate_limited = lim.rate_limited,
      waited_s = lim.waited_s, shared = lim.shared and lim.shared:status() or nil,
    }
  end
  table.sort(out, function(a, b) return a.key < b.key end)
  return out
end

--- A few words for the progress line: the concurrency bound and what the
-- calls wait for ("conc 12  waiting for TPM"), or nil.
function M.progress_text()
  local parts = {}
  for _, lim in pairs(limiters) do
    local w = lim.window
    if w.limit ~= math.huge then parts[#parts + 1] = ("conc %d"):format(math.floor(w.limit)) end
    local queued = lim.tail - lim.head + 1
    if queued > 0 and lim.waiting_for then
      parts[#parts + 1] = "waiting for " .. (LABEL[lim.waiting_for] or lim.waiting_for)
    end
    if #parts >= 4 then break end
  end
  return #parts > 0 and table.concat(parts, "  ") or nil
end

return M
