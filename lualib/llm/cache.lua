-- llm.cache: response and embedding caches for models.
--
--   local c = llm.cache.open{ path=, namespace="default", ttl=, max_bytes=,
--                             memory_bytes=, sampled=false, replay="instant" }
--   local c = llm.cache.open{ redis = "redis://host:6379/0", ... }  -- shared by every
--                             process that opens it (llm.cache_redis)
--   local m = llm.model{ "gpt-4o-mini", cache = c }   -- or m:with_cache(c), or cache = true
--   local r = m:chat "..."          -- r.cached: false | "exact" | "semantic"
--   c:stats()  c:clear()  c:path()  c:namespace "other"
--   local s = llm.cache.semantic{ embed = llm.model "text-embedding-3-small",
--                                 threshold = 0.92, audit = { rate = 0.05 } }
--
-- How a call meets the cache (hooks on llm.calls, so the model code does
-- not know about it):
--   * chat and stream requests are keyed by the SHA-256 of their canonical
--     form (llm.cache_canon); a hit answers at once, with latency_ms = the
--     lookup time and `saved` = what the original call took (latency,
--     usage, model, cost). Its own usage is zero: nothing was billed.
--   * a request that asks for sampling (temperature > 0 without a seed) is
--     not cached unless the cache was opened with sampled = true: with
--     sampling, a different answer each time is the point, and a cache
--     would silently turn it into one fixed answer. (A request that sets no
--     temperature is cached: it did not ask for variety.)
--   * identical requests in flight at the same time make one upstream
--     call: the others wait for it and get its answer, marked
--     cached = "exact" and shared = true (they cost nothing).
--   * errors, partial and truncated streams are never stored.
--   * embeddings are cached per (model, dimensions, text); m:embed asks
--     upstream only for the texts it lacks.
--   * a storage failure (read-only or full disk, a damaged file) never
--     fails the call: it is reported once on stderr and counted.
local C = require "_llm.cache"
local loop = require "_llm.loop"
local pipeline = require "llm.pipeline"
local canon = require "llm.cache_canon"
local context = require "llm.context"
local response = require "llm.response"
local cache_doc = require "llm.cache_doc"
local bounded = require "llm.memo"

local now = loop.now
local sha256 = C.sha256

local M = {}

M.DEFAULT_MAX_BYTES = 1 << 30        -- 1 GiB on disk (diskcache's default)
M.DEFAULT_MEMORY_BYTES = 64 << 20    -- 64 MiB in memory

local Cache = {}
Cache.__index = Cache
Cache.__name = "llm.cache"

local function is_cache(v) return getmetatable(v) == Cache end
M.is_cache = is_cache

-- ---- shared stores: one connection per file per process -------------------------

local stores = {}          -- path -> shared state
local exit_hook = false

local function warn_once(shared, what, msg)
  if shared.warned[what] then return end
  shared.warned[what] = true
  io.stderr:write("llmrun: cache: ", what, ": ", tostring(msg),
    " (the call's result is still returned; this is reported once)\n")
end

-- Answers that a write_delay batch could not write (a full disk...) since
-- the last look: -> how many, and why. Said once, like a failed store.
local function newly_lost(shared)
  local d = shared.db
  if not (d and d.lost) then return 0 end
  local n, why = d:lost()
  local new = n - (shared.lost_seen or 0)
  if new <= 0 then return 0 end
  shared.lost_seen = n
  warn_once(shared, "storing failed", why)
  return new
end

local function flush_all()
  for _, shared in pairs(stores) do
    if shared.db then
      pcall(shared.db.flush, shared.db)
      newly_lost(shared)
    end
  end
end

-- What a store backend (llm.cache_redis) may use of this module.
local store_api = { DEFAULT_MEMORY_BYTES = M.DEFAULT_MEMORY_BYTES, warn_once = warn_once }

local function open_store(opts)
  if opts.redis ~= nil then return require("llm.cache_redis").open_store(opts, stores, store_api) end
  local path = opts.path
  if path == nil then
    local p, err = C.default_path()
    if not p then return nil, err end
    path = p
  end
  local shared = stores[path]
  if shared and shared.db then return shared end
  local db, err = C.open {
    path = path,
    memory_bytes = opts.memory_bytes or M.DEFAULT_MEMORY_BYTES,
    max_bytes = opts.max_bytes or M.DEFAULT_MAX_BYTES,
    max_entry_bytes = opts.max_entry_bytes,
    busy_timeout_ms = opts.busy_timeout_ms,
    readonly = opts.readonly,
    write_delay = opts.write_delay,
  }
  if not db then return nil, err end
  shared = { db = db, path = db:path(), inflight = {}, warned = {}, session = {} }
  stores[path] = shared
  -- Opened for writing but only readable (a read-only file, directory or
  -- file system): hits are served, nothing is written, and that is said
  -- once, here, rather than as a failure on every store.
  local ro, why = db:readonly()
  if ro and why and not opts.readonly then
    shared.readonly = why
    shared.warned["storing failed"] = true
    io.stderr:write("llmrun: cache: ", why, ": answers already stored are served, "
      .. "new ones are not stored (reported once)\n")
  end
  if not exit_hook then
    exit_hook = true
    require("_llm.host").on_exit(flush_all)
  end
  return shared
end

-- ---- the Cache object --------------------------------------------------------------

local open_keys = {
  path = "string", namespace = "string", ttl = "number", max_bytes = "number",
  memory_bytes = "number", max_entry_bytes = "number", busy_timeout_ms = "number",
  sampled = "boolean", replay = "string", readonly = "boolean", write_delay = "number",
  -- the shared cache (llm.cache_redis)
  redis = "string", compress_above = "number", lock_ttl = "number", redis_timeout = "number",
}

local function check_opts(opts, fname, extra)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("bad argument #1 to '%s' (table of options expected, got %s)"):format(fname, type(opts)), 3)
  end
  for k, v in pairs(opts) do
    local want = open_keys[k] or (extra and extra[k])
    if not want then error(("%s: unknown option '%s'"):format(fname, tostring(k)), 3) end
    if want ~= "any" and type(v) ~= want then
      error(("%s: option '%s' must be a %s, got %s"):format(fname, k, want, type(v)), 3)
    end
  end
  if opts.replay and opts.replay ~= "instant" and opts.replay ~= "timed" then
    error(fname .. ": replay must be \"instant\" or \"timed\"", 3)
  end
  for _, k in ipairs { "ttl", "max_bytes", "memory_bytes", "max_entry_bytes", "write_delay" } do
    if opts[k] and not (opts[k] >= 0) then error(("%s: %s must be >= 0"):format(fname, k), 3) end
  end
  return opts
end

local function new_view(shared, opts, namespace)
  return setmetatable({
    shared = shared,
    ns = namespace or opts.namespace or "default",
    ttl = opts.ttl,
    sampled = opts.sampled == true,
    replay = opts.replay or "instant",
    opts = opts,
  }, Cache)
end

--- llm.cache.open{...} -> cache | nil, err (err.kind == "cache", err.status:
-- "newer_schema" | "corrupt" | "readonly" | "full" | "foreign" | "io" ...).
function M.open(opts)
  opts = check_opts(opts, "llm.cache.open")
  local shared, err = open_store(opts)
  if not shared then return nil, err end
  return new_view(shared, opts)
end

local default_cache, default_failed

--- The cache at the default path, opened once; nil (with one warning on
-- stderr) when it cannot be opened. What `cache = true` means.
function M.default()
  if default_cache and default_cache.shared.db then return default_cache end
  if default_failed then return nil end
  local c, err = M.open()
  if not c then
    default_failed = true
    io.stderr:write("llmrun: cache: ", tostring(err.message), "; calls go on without a cache\n")
    return nil
  end
  default_cache = c
  return c
end

--- What a model's `cache` option may be: a cache, true (the default
-- cache) or false/nil (none). Used by llm.model and m:with_cache.
function M.resolve(v)
  if v == nil or v == false then return nil end
  if v == true then v = M.default() end
  if type(v) == "string" and (v:find("^redis://") or v:find("^unix://")) then
    local c, err = M.open { redis = v }
    if not c then error("the cache " .. tostring(err), 3) end
    v = c
  end
  if v == nil or is_cache(v) then
    if v then pipeline.use("cache") end
    return v
  end
  error("the cache option must be a cache (llm.cache.open{...}, llm.cache.semantic{...}), "
    .. "a redis:// URL, true or false, got " .. type(v), 3)
end

--- A view of the same store under another namespace (same options).
function Cache:namespace(name)
  if type(name) ~= "string" or name == "" then
    error("bad argument #1 to 'namespace' (non-empty string expected)", 2)
  end
  local v = new_view(self.shared, self.opts, name)
  v.semantic = self.semantic
  return v
end

function Cache:path() return self.shared.path end

function Cache:__tostring()
  return ("cache %s (namespace %s%s)"):format(self.shared.path, self.ns,
    self.semantic and ", semantic" or "")
end

local function db(self)
  local d = self.shared.db
  if not d then error("this cache is closed", 3) end
  return d
end

--- Writes what waits (answers stored within write_delay, statistics) now,
-- for another process to see: -> true | nil, err.
function Cache:flush()
  local d = self.shared.db
  if not d then error("this cache is closed", 2) end
  if not d.flush then return true end
  local ok, err = d:flush()
  self:_count_lost()
  return ok, err
end

--- Closes the store (every view of it). Pending statistics are written.
function Cache:close()
  local shared = self.shared
  if shared.db then
    shared.db:close()
    shared.db = nil
    if stores[shared.path] == shared then stores[shared.path] = nil end
  end
end
Cache.__close = Cache.close

--- c:clear{namespace = name | "*" (all), expired = bool} -> entries removed
-- | nil, err. Without a namespace: this cache's namespace.
function Cache:clear(opts)
  opts = opts or {}
  local ns = opts.namespace or self.ns
  if ns == "*" then ns = nil end
  local n, err = db(self):clear(ns, opts.expired == true)
  if not n then return nil, err end
  if not opts.expired then
    if ns then self.shared.session[ns] = nil else self.shared.session = {} end
  end
  return n
end

-- ---- statistics ---------------------------------------------------------------------

local function session_counts(self)
  local s = self.shared.session[self.ns]
  if not s then
    s = { hits_exact = 0, hits_semantic = 0, hits_shared = 0, misses = 0, stores = 0,
          skipped = 0, errors = 0, tokens_saved = 0, cost_saved = 0, time_saved_ms = 0,
          priced_hits = 0 }
    self.shared.session[self.ns] = s
  end
  return s
end

-- s: session_counts(self), d: the store (count_hit adds several at once)
local function add(self, s, d, name, amount)
  amount = math.tointeger(amount) or amount
  s[name] = s[name] + amount
  if d and amount ~= 0 and name ~= "priced_hits" then d:count(self.ns, name, amount) end
end

local function count(self, name, amount)
  add(self, session_counts(self), self.shared.db, name, amount or 1)
end

-- Answers a write_delay batch could not write count as errors of the
-- view that notices them (and are said once).
function Cache:_count_lost()
  local lost = newly_lost(self.shared)
  if lost > 0 then count(self, "errors", lost) end
end

local function summarize(c)
  local hits = c.hits_exact + c.hits_semantic + c.hits_shared
  local lookups = hits + c.misses
  return {
    hits = hits, exact_hits = c.hits_exact, semantic_hits = c.hits_semantic,
    shared_hits = c.hits_shared, misses = c.misses, lookups = lookups,
    hit_rate = lookups > 0 and hits / lookups or nil,
    stores = c.stores, skipped = c.skipped, errors = c.errors,
    tokens_saved = c.tokens_saved, cost_saved = c.cost_saved,
    priced_hits = c.priced_hits, time_saved_ms = c.time_saved_ms,
  }
end
M.summarize = summarize

--- c:stats() -> this process's numbers for this namespace: hits (exact,
-- semantic, shared), misses, hit_rate, tokens_saved, cost_saved (of the
-- priced_hits hits whose cost was known), time_saved_ms, stores, skipped,
-- errors. c:stats{all_time = true}: every run's, as stored in the file,
-- plus entries, bytes and vectors.
function Cache:stats(opts)
  if opts and opts.all_time then
    local rows, err = db(self):stats(self.ns)
    if not rows then return nil, err end
    local row = rows[1] or {}
    local c = {}
    for _, k in ipairs { "hits_exact", "hits_semantic", "hits_shared", "misses", "stores",
                         "skipped", "errors", "tokens_saved", "cost_saved", "time_saved_ms" } do
      c[k] = row[k] or 0
    end
    c.priced_hits = nil
    local s = summarize(c)
    s.priced_hits = nil
    s.entries, s.bytes, s.vectors = row.entries or 0, row.bytes or 0, row.vectors or 0
    s.namespace = self.ns
    return s
  end
  local shared = self.shared
  if shared.db and shared.db.lost and not shared.readonly then
    -- what waits is written now, so a failure to write it counts here
    pcall(shared.db.flush, shared.db)
    self:_count_lost()
  end
  local s = summarize(session_counts(self))
  s.namespace = self.ns
  return s
end

-- ---- stored responses (llm.cache_doc) -------------------------------------------------

-- A cache hit for this call (its response: llm.cache_doc).
local function hit_response(self, call, doc, kind, extra)
  local r = cache_doc.hit(call, doc, kind, extra, call.opts.replay or self.replay)
  call.cache_hit = self
  return r
end

--- The stored response for key in this namespace, decoded (shared with
-- other lookups of the same bytes: read it, do not change it), or nil. A
-- failing read is reported once and counts as a miss.
function Cache:_lookup(key)
  local shared = self.shared
  if not shared.db or shared.broken then return nil end
  local value, created = shared.db:get(self.ns, key)
  if value == nil then
    if created ~= nil then -- a failure: (nil, err)
      if created.status == "corrupt" then shared.broken = created.status end
      count(self, "errors")
      warn_once(shared, "reading failed", created.message)
    end
    return nil
  end
  return cache_doc.decoded(shared, key, value), created
end

function Cache:_store(key, resp)
  local shared = self.shared
  if not shared.db or shared.broken or shared.readonly then return false end
  local ok, value = cache_doc.encode(resp)
  if not ok then
    count(self, "skipped")
    return false
  end
  local done, err = shared.db:put(self.ns, key, value, self.ttl)
  self:_count_lost() -- earlier answers a batch could not write
  if not done then
    if err.status == "too_big" then
      count(self, "skipped")
    else
      count(self, "errors")
      warn_once(shared, "storing failed", err.message)
    end
    return false
  end
  count(self, "stores")
  return true
end

-- ---- in-flight de-duplication ----------------------------------------------------------
-- One entry per request being fetched: its leader task, and the tasks
-- waiting for its answer. When the leader's call ends, the waiters wake;
-- with an answer they share it, without one (an error) the first of them
-- to run becomes the next leader.

local function finish_flight(shared, ikey, fl, resp)
  if fl.done then return end
  fl.done = true
  fl.resp = resp
  if shared.inflight[ikey] == fl then shared.inflight[ikey] = nil end
  for _, t in ipairs(fl.waiters) do loop.wake(t) end
  if fl.watcher and fl.watcher ~= loop.current() then fl.watcher:cancel() end
end

-- A leader that ended without finishing its call (its task was cancelled
-- or failed) would hold its waiters forever: a watcher frees them.
local function watch_leader(shared, ikey, fl)
  fl.watcher = context.spawn(function()
    while not fl.done do
      loop.sleep(0.05)
      local st = fl.task:status()
      if st ~= "running" and st ~= "waiting" and st ~= "ready" and not fl.done then
        finish_flight(shared, ikey, fl, nil)
      end
    end
  end)
end

local function wait_for_flight(shared, ikey, fl, me)
  fl.waiters[#fl.waiters + 1] = me
  -- the watcher is a child of the first waiter: start another if it went
  local w = fl.watcher and fl.watcher:status()
  if w == nil or w == "done" or w == "failed" or w == "cancelled" then
    watch_leader(shared, ikey, fl)
  end
  while not fl.done do loop.suspend() end
end

-- plan: {key=, lookup=fn(cache, call, plan) -> resp | nil,
--        shared_hit=fn(cache, call, plan, resp) -> resp}: functions of
-- the kind of call, not closures made for each one
local function run_plan(self, call, plan)
  local shared = self.shared
  local ikey = self.ns .. "\0" .. plan.key
  local me = loop.current()
  while true do
    local r = plan.lookup(self, call, plan)
    if r then return r end
    local fl = shared.inflight[ikey]
    -- never wait on ourselves (a stream this task has yet to read)
    if not fl or not me or fl.task == me or not coroutine.isyieldable() then break end
    wait_for_flight(shared, ikey, fl, me)
    if fl.resp then return plan.shared_hit(self, call, plan, fl.resp) end
  end
  if not shared.inflight[ikey] and me then
    plan.flight = { task = me, waiters = {} }
    shared.inflight[ikey] = plan.flight
    plan.ikey = ikey
    -- a shared store: the same request may be in flight in another process
    if shared.remote_flight and coroutine.isyieldable() then
      local r = shared.remote_flight(self, call, plan)
      if r then
        finish_flight(shared, ikey, plan.flight, r)
        return r
      end
    end
  end
  plan.cache = self
  call.cache_plan = plan
  return nil
end

-- ---- chat and stream -------------------------------------------------------------------

local function sampled(body)
  local t = body.temperature
  return type(t) == "number" and t > 0 and body.seed == nil
end

local function chat_lookup(self, call, plan)
  local doc, created = self:_lookup(plan.key)
  if doc then return hit_response(self, call, doc, "exact", { created = created }) end
  if self.semantic and not plan.semantic_done then
    plan.semantic_done = true
    return self.semantic.lookup(self, call, plan)
  end
end

local function chat_shared_hit(self, call, _, resp)
  local doc = cache_doc.keep_extras({ text = resp.text, tool_calls = resp.tool_calls,
                finish_reason = resp.finish_reason, choices = resp.choices, usage = resp.usage,
                model = resp.model, latency_ms = resp.latency_ms, ttft_ms = resp.ttft_ms,
                cost = resp.cost }, resp)
  return hit_response(self, call, doc, "exact", { shared = true })
end

-- Keys of requests given as bytes (call.opts.wire: the bytes a gateway's
-- client sent, which decode to call.body): the same bytes to the same
-- model are the same request, so its canonical text and hash are made
-- once, not on every call (a third of a gateway's hit lookup). Per model,
-- for its identity at the time (a model whose name, provider or endpoint
-- changed starts again), at most WIRE_KEYS_MAX requests and WIRE_BYTES_MAX
-- bytes of them (a gateway's long contexts must not pile up here).
local WIRE_KEYS_MAX, WIRE_BYTES_MAX = 1024, 8 << 20
local wire_keys = setmetatable({}, { __mode = "k" }) -- model -> {identity=, memo=(wire -> key)}

local function chat_key(call)
  local model, wire = call.model, call.opts.wire
  local memo
  if type(wire) == "string" then
    local per = wire_keys[model]
    local identity = canon.identity(model, "chat")
    if not per or per.identity ~= identity then
      per = { identity = identity, memo = bounded.new(WIRE_KEYS_MAX, WIRE_BYTES_MAX) }
      wire_keys[model] = per
    end
    memo = per.memo
    local key = memo:get(wire)
    if key then return key end
  end
  local text = canon.request(model, "chat", call.body)
  if not text then return nil end
  local key = sha256(text)
  if memo then memo:put(wire, key, #wire) end
  return key
end

local function chat_plan(self, call)
  if not self.sampled and sampled(call.body) then
    count(self, "skipped")
    return nil
  end
  local key = chat_key(call)
  if not key then
    count(self, "skipped")
    return nil
  end
  return { key = key, kind = "chat", lookup = chat_lookup, shared_hit = chat_shared_hit }
end

-- ---- embeddings --------------------------------------------------------------------------

local tokens_mod
local function count_tokens(text, model)
  if tokens_mod == nil then
    local ok, t = pcall(require, "llm.tokens")
    tokens_mod = ok and type(t) == "table" and type(t.count) == "function" and t or false
  end
  if not tokens_mod then return nil end
  local ok, n = pcall(tokens_mod.count, text, model)
  return ok and type(n) == "number" and n or nil
end

local function embed_saved(call, list)
  local total, known = 0, true
  for _, text in ipairs(list) do
    local n = count_tokens(text, call.model.name)
    if not n then known = false break end
    total = total + n
  end
  return { usage = known and { prompt_tokens = total, total_tokens = total } or nil,
           model = call.model.name }
end

local function embed_lookup(self, call, plan)
  local body, mid, dims = call.body, plan.mid, plan.dims
  local shared, known, cached_texts = self.shared, {}, {}
  if shared.db and not shared.broken then
    for i, h in ipairs(plan.hashes) do
      local v, err = shared.db:embed_get(mid, dims, h)
      if v then
        known[i] = v
        cached_texts[#cached_texts + 1] = body.input[i]
      elseif err then
        count(self, "errors")
        warn_once(shared, "reading failed", err.message)
        break
      end
    end
  end
  if #cached_texts == #body.input then
    local latency = (now() - call.t0) * 1000
    call.cache_hit = self
    return response.new {
      vectors = known, usage = { prompt_tokens = 0, total_tokens = 0 }, latency_ms = latency,
      lookup_ms = latency,
      model = call.model.name, provider = call.model.provider, simulated = call.model.simulated,
      retries = 0, cached = "exact", saved = embed_saved(call, cached_texts),
    }
  end
  plan.known, plan.cached_texts = known, cached_texts
  -- the model requests only the texts missing here
  call.known_vectors = #cached_texts > 0 and known or nil
end

local function embed_shared_hit(self, call, _, resp)
  call.cache_hit = self
  local latency = (now() - call.t0) * 1000
  return response.new {
    vectors = resp.vectors, usage = { prompt_tokens = 0, total_tokens = 0 },
    latency_ms = latency, lookup_ms = latency, model = resp.model, provider = resp.provider,
    simulated = resp.simulated, retries = 0, cached = "exact", shared = true,
    saved = { usage = resp.usage, model = resp.model, latency_ms = resp.latency_ms, cost = resp.cost },
  }
end

local function embed_plan(self, call)
  local body = call.body
  local mid = canon.model_identity(call.model)
  local dims = body.dimensions or 0
  local text = canon.request(call.model, "embed", body)
  if not text or math.type(dims) ~= "integer" then
    count(self, "skipped")
    return nil
  end
  local plan = { key = sha256(text), kind = "embed", mid = mid, dims = dims, hashes = {},
                 lookup = embed_lookup, shared_hit = embed_shared_hit }
  for i, t in ipairs(body.input) do plan.hashes[i] = sha256(t) end
  return plan
end

local function store_vectors(self, plan, resp)
  local shared = self.shared
  if not shared.db or shared.broken or shared.readonly or type(resp.vectors) ~= "table" then return end
  local hashes, vecs = {}, {}
  for i, h in ipairs(plan.hashes) do
    if not (plan.known and plan.known[i]) and type(resp.vectors[i]) == "table" then
      hashes[#hashes + 1] = h
      vecs[#vecs + 1] = resp.vectors[i]
    end
  end
  if #hashes == 0 then return end
  local ok, done, err = pcall(shared.db.embed_put, shared.db, plan.mid, plan.dims, hashes, vecs)
  if not ok or not done then
    count(self, "errors")
    warn_once(shared, "storing failed", ok and err.message or done)
    return
  end
  count(self, "stores")
end

-- ---- the hooks -----------------------------------------------------------------------------

function Cache:_before(call)
  if call.opts.cache == false or not self.shared.db then return nil end
  local plan
  if call.kind == "embed" then
    plan = embed_plan(self, call)
  elseif call.kind == "chat" or call.kind == "stream" then
    plan = chat_plan(self, call)
  end
  if not plan then return nil end
  return run_plan(self, call, plan)
end

-- What a hit saved, for the statistics. The price hook (priority 10) has
-- set resp.saved.cost by now where prices are known.
local NOTHING_SAVED = {}

local function count_hit(self, resp)
  local kind = resp.shared and "hits_shared" or resp.cached == "semantic" and "hits_semantic"
    or "hits_exact"
  local s, d = session_counts(self), self.shared.db
  add(self, s, d, kind, 1)
  local saved = resp.saved or NOTHING_SAVED
  local u = saved.usage
  if type(u) == "table" then
    add(self, s, d, "tokens_saved", (u.total_tokens and u.total_tokens > 0) and u.total_tokens
      or ((u.prompt_tokens or 0) + (u.completion_tokens or 0)))
  end
  if type(saved.cost) == "number" then
    add(self, s, d, "cost_saved", saved.cost)
    add(self, s, d, "priced_hits", 1)
  end
  if type(saved.latency_ms) == "number" and type(resp.latency_ms) == "number" then
    add(self, s, d, "time_saved_ms", math.max(0, saved.latency_ms - resp.latency_ms))
  end
end

function Cache:_finish(call, resp, err)
  if call.cache_hit == self then
    if resp then count_hit(self, resp) end
    return
  end
  local plan = call.cache_plan
  if not plan or plan.cache ~= self then return end
  local shared = self.shared
  -- only our own entry: a watcher may have handed the request to another
  -- leader if our task ended before this (a stream read by another task)
  local fl = plan.flight
  local good = resp and not err and not resp.partial and not resp.cached
  count(self, "misses")
  if good then
    if plan.kind == "embed" then
      store_vectors(self, plan, resp)
      if plan.cached_texts and #plan.cached_texts > 0 then
        resp.cached_vectors = #plan.cached_texts
        local saved = embed_saved(call, plan.cached_texts)
        if saved.usage then count(self, "tokens_saved", saved.usage.total_tokens) end
      end
    else
      local stored = self:_store(plan.key, resp)
      if self.semantic then self.semantic.after(self, call, plan, resp, stored) end
    end
  end
  if fl then finish_flight(shared, plan.ikey, fl, good and resp or nil) end
  if plan.remote then shared.remote_release(plan, good) end
end

-- The stages (llm.pipeline: cache.lookup, cache.store), installed when a
-- model is given a cache (M.resolve): they act on the call's model's cache.

--- cache.lookup, a before-stage: a hit answers the call.
function M.lookup_stage(call)
  local c = call.model.cache
  if c ~= nil and getmetatable(c) == Cache then return c:_before(call) end
end

--- cache.store, a finish-stage: stores a good answer, counts a hit.
function M.store_stage(call, resp, err)
  local c = call.model.cache
  if c ~= nil and getmetatable(c) == Cache then c:_finish(call, resp, err) end
end

--- cache.audit, an after-stage: a semantic hit's audit (it may wait).
function M.audit_stage(call, resp)
  if call.semantic_audit then require("llm.cache_semantic").audit_after(call, resp) end
end

-- ---- semantic caches ---------------------------------------------------------------------------

-- What llm.cache_semantic may use of this module (its header lists it).
local semantic_api = {
  check_opts = check_opts, open_store = open_store, new_view = new_view,
  read = function(c, key) return c:_lookup(key) end,
  hit = hit_response,
  warn = function(c, what, msg) warn_once(c.shared, what, msg) end,
}

--- llm.cache.semantic{embed = model, threshold = 0.92, scope = "request" |
-- "model" | function(call) -> string, audit = {rate=, floor=, same=} | true,
-- ...and any llm.cache.open option} -> cache | nil, err. See llm.cache_semantic.
function M.semantic(opts)
  return require("llm.cache_semantic").new(opts, semantic_api)
end

--- c:audit_table([thresholds]) -> rows {threshold, samples, differed,
-- false_hit_rate}: of the audited semantic matches at or above each
-- threshold, the (sampling-weighted) share whose answer differed.
function Cache:audit_table(thresholds)
  db(self)
  return require("llm.cache_semantic").audit_table(self, thresholds)
end

--- The audit table as text.
function Cache:format_audit(thresholds)
  local rows, err = self:audit_table(thresholds)
  if not rows then return nil, err end
  return require("llm.cache_semantic").format_audit(rows)
end

M.Cache = Cache
M.canonical = canon.encode
--- The key (hex) the cache gives a chat request to model m (for tests and tools).
function M.key(m, req)
  local body = m.request_body and m:request_body(req)
    or require("llm.model").Model.normalize(req, m.defaults or {})
  return C.hex(sha256(assert(canon.request(m, "chat", body))))
end

return M
