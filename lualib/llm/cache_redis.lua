-- The shared cache: llm.cache.open{ redis = "redis://host:6379/0", ... }
-- keeps responses, embeddings and semantic-cache vectors in Redis, so
-- every process and host pointed at it shares them, with this process's
-- in-memory LRU in front (a hot entry costs no round trip).
--
-- It is a store backend of llm.cache: the same object, methods and
-- statistics as the sqlite store, and the same rules (errors are never
-- stored, sampled requests are skipped, a failure is a miss and one
-- warning, never a failed call). What differs:
--   * TTL: Redis expires entries (SET ... PX); the LRU honours the TTL too.
--   * Size: bounded by Redis, not by max_bytes: set maxmemory and an
--     eviction policy on the server (maxmemory-policy allkeys-lru for a
--     Redis used only as a cache; volatile-lru when it also holds budgets
--     or experiment queues, which have no TTL and must not be evicted,
--     and then open the cache with a ttl so its entries can be).
--   * Values over compress_above bytes (default 1024) are stored zlib-
--     compressed (LLM responses are JSON and shrink 3-5x).
--   * Identical requests in flight in different processes make one
--     upstream call: the first takes a lock (SET NX PX lock_ttl, kept
--     alive while its call runs), the others wait on the namespace's
--     notification stream (XREAD BLOCK) and then read its answer. If the
--     leader fails they retry; if its process dies its lock expires
--     within lock_ttl seconds and one of them takes over.
--   * Semantic vectors: each addition goes to a Redis stream; every
--     process keeps a local index and reads the stream's new entries
--     before each search (one round trip), so a paraphrase answered in
--     one process matches in another as soon as the addition landed.
--   * Keys: llmrun:{cache:<namespace>}:... (the namespace is the Redis
--     Cluster hash tag: one namespace lives on one shard). Embeddings:
--     llmrun:{emb:<model>}:... . c:clear() scans and unlinks them.
local C = require "_llm.cache"
local loop = require "_llm.loop"
local lru_mod = require "_llm.lru"
local vecindex = require "_llm.vecindex"
local zlib = require "_llm.zlib"
local errors = require "llm.errors"
local redis = require "llm.redis"

local M = {}

M.DEFAULT_COMPRESS_ABOVE = 1024
M.DEFAULT_LOCK_TTL = 10       -- seconds a dead leader's lock outlives it
M.DEFAULT_TIMEOUT = 1.0       -- seconds one cache operation may take
M.MAX_WAIT = 600              -- longest a call waits for another process's identical call
M.COUNTS_EVERY = 1.0          -- seconds between writes of the statistics
M.SEM_MAXLEN = 1000000        -- semantic stream entries kept (approximately)
M.DONE_MAXLEN = 10000         -- notifications kept
M.AUDIT_MAX = 100000
M.SCAN_LIMIT = 1000000        -- keys c:stats / c:clear look at, at most

local hex = C.hex
local now = loop.now
local wallclock = loop.wallclock

local Store = {}
Store.__index = Store
Store.__name = "llm.cache.redis_store"

local owner_seq = 0
local function new_owner()
  owner_seq = owner_seq + 1
  return require("_llm.calllog").new_run_id() .. "-" .. owner_seq
end

local function tag(ns) return "cache:" .. ns:gsub("[{}]", "_") end

function Store:vkey(ns, key) return redis.key(tag(ns), "v", hex(key)) end

-- A failure, as the sqlite store gives it: nil and an llm.error of kind
-- "cache" (status "io": Redis is unreachable, slow, or refused).
local function fail(err)
  return nil, errors.new("cache", "redis: " .. tostring(err and err.message or err), { status = "io" })
end

-- ---- values: a header, then JSON as is or zlib-compressed ---------------------------

local function encode(self, value, created)
  if #value >= self.compress_above then
    local z = zlib.deflate(value)
    if z and #z < #value then return string.pack("<c1dI4", "z", created, #value) .. z end
  end
  return string.pack("<c1d", "j", created) .. value
end

local function decode(raw)
  if #raw < 9 then return nil, "short value" end
  local kind, created, pos = string.unpack("<c1d", raw)
  if kind == "j" then return raw:sub(pos), created end
  if kind == "z" and #raw >= pos + 3 then
    local size, zpos = string.unpack("<I4", raw, pos)
    local value, err = zlib.inflate(raw:sub(zpos), size)
    if not value then return nil, err end
    return value, created
  end
  return nil, "unknown value format"
end

-- Tickets of writes sent without waiting: a failure is reported (once)
-- when it is noticed, at the next operation.
local function track(self, t)
  local list = self.tickets
  list[#list + 1] = t
  if #list < 64 then return end
  local keep = {}
  for _, x in ipairs(list) do
    local st, msg = x:status()
    if st == "pending" then keep[#keep + 1] = x
    elseif st == "error" and self.on_error then self.on_error("storing failed", msg) end
  end
  self.tickets = keep
end

local function send(self, ...)
  local t, err = self.cl:send(...)
  if not t then return nil, err end
  track(self, t)
  return true
end

-- ---- the store interface of llm.cache ------------------------------------------------

function Store:path() return self.display end
function Store:readonly() return false end

function Store:get(ns, key)
  local lk = ns .. "\0" .. key
  local v, created = self.lru:get(lk)
  if v then
    self.memory_hits = self.memory_hits + 1
    return v, created
  end
  local vkey = self:vkey(ns, key)
  local r, err = self.cl:pipeline({ { "GET", vkey }, { "PTTL", vkey } }, self.timeout)
  if not r then return fail(err) end
  local raw, pttl = r[1], r[2]
  if raw == false then return nil end
  if type(raw) ~= "string" then return fail(raw) end
  local value, created_or_err = decode(raw)
  if not value then
    return nil, errors.new("cache", "a damaged entry in Redis: " .. tostring(created_or_err), { status = "io" })
  end
  local expires = math.type(pttl) == "integer" and pttl > 0 and wallclock() + pttl / 1000 or 0
  self.lru:put(lk, value, created_or_err, expires)
  self.redis_hits = self.redis_hits + 1
  return value, created_or_err
end

function Store:put(ns, key, value, ttl)
  local created = wallclock()
  local raw = encode(self, value, created)
  local vkey = self:vkey(ns, key)
  local ok, err
  if ttl and ttl > 0 then
    ok, err = send(self, "SET", vkey, raw, "PX", math.max(1, math.floor(ttl * 1000)))
  else
    ok, err = send(self, "SET", vkey, raw)
  end
  if not ok then return fail(err) end
  self.lru:put(ns .. "\0" .. key, value, created, ttl and ttl > 0 and created + ttl or 0)
  return true
end

function Store:delete(ns, key)
  self.lru:del(ns .. "\0" .. key)
  local ok, err = send(self, "UNLINK", self:vkey(ns, key))
  if not ok then return fail(err) end
  return true
end

-- Statistics are summed here and written every COUNTS_EVERY seconds (and
-- at exit): one HINCRBYFLOAT per counter, not one per call.
function Store:count(ns, name, amount)
  local c = self.counts[ns]
  if not c then
    c = {}
    self.counts[ns] = c
  end
  c[name] = (c[name] or 0) + amount
  if now() - self.counted_at >= M.COUNTS_EVERY then self:flush() end
end

function Store:flush()
  self.counted_at = now()
  for ns, c in pairs(self.counts) do
    local skey = redis.key(tag(ns), "stats")
    for name, amount in pairs(c) do
      if amount ~= 0 then
        if not send(self, "HINCRBYFLOAT", skey, name, amount) then return nil end
      end
    end
  end
  self.counts = {}
  return true
end

local function glob_escape(s) return (s:gsub("[%*%?%[%]\\]", "\\%0")) end

-- Every key matching pattern, SCAN by SCAN (bounded by SCAN_LIMIT). On a
-- Redis Cluster a pattern with a plain hash tag is one slot's (the client
-- sends SCAN there); one whose tag is a glob ("{cache:*") is scanned on
-- every node.
local function scan(self, pattern, fn)
  local seen = 0
  local nodes = { false }
  if self.cl:info().cluster and pattern:find("{[^}]*[*?[\\]") then nodes = self.cl:shard_slots() end
  if #nodes == 0 then nodes = { false } end -- the map not read yet: as on one server
  for _, slot in ipairs(nodes) do
    local cursor = "0"
    repeat
      local r, err
      if slot then r, err = self.cl:call_at(slot, "SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
      else r, err = self.cl:call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000) end
      if not r then return nil, err end
      cursor = r[1]
      local ok, ferr = fn(r[2])
      if ok == nil then return nil, ferr end
      seen = seen + #r[2]
    until cursor == "0" or seen >= M.SCAN_LIMIT
  end
  return true
end

local function ns_pattern(ns)
  if ns == nil then return redis.PREFIX .. ":{cache:*" end
  return redis.PREFIX .. ":{" .. glob_escape(tag(ns)) .. "}:*"
end

function Store:clear(ns, expired_only)
  if expired_only then return 0 end -- Redis drops expired entries itself
  local n = 0
  local ok, err = scan(self, ns_pattern(ns), function(keys)
    if #keys == 0 then return true end
    local cmd = { "UNLINK" }
    for _, k in ipairs(keys) do
      cmd[#cmd + 1] = k
      if k:find(":v:", 1, true) then n = n + 1 end
    end
    local r, e
    if ns == nil and self.cl:info().cluster then
      -- keys of several namespaces: one slot each, so one UNLINK each
      local each = {}
      for i, k in ipairs(keys) do each[i] = { "UNLINK", k } end
      r, e = self.cl:pipeline(each)
    else
      r, e = self.cl:call(table.unpack(cmd))
    end
    if not r then return nil, e end
    return true
  end)
  if not ok then return fail(err) end
  self.lru:clear()
  for k, st in pairs(self.sem) do
    if ns == nil or k:sub(1, #ns + 1) == ns .. "\0" then self.sem[k] = nil end
    st.cleared = true
  end
  return n
end

local COUNTERS = { "hits_exact", "hits_semantic", "hits_shared", "misses", "stores", "skipped",
                   "errors", "tokens_saved", "cost_saved", "time_saved_ms" }

local function ns_stats(self, ns)
  local row = { namespace = ns, entries = 0, bytes = 0, vectors = 0 }
  local h, err = self.cl:call("HGETALL", redis.key(tag(ns), "stats"))
  if not h then return nil, err end
  for i = 1, #h - 1, 2 do
    local v = tonumber(h[i + 1]) or 0
    row[h[i]] = math.tointeger(v) or v
  end
  for _, k in ipairs(COUNTERS) do row[k] = row[k] or 0 end
  local ok, serr = scan(self, redis.PREFIX .. ":{" .. glob_escape(tag(ns)) .. "}:v:*", function(keys)
    if #keys == 0 then return true end
    local cmds = {}
    for i, k in ipairs(keys) do cmds[i] = { "STRLEN", k } end
    local r, e = self.cl:pipeline(cmds)
    if not r then return nil, e end
    for _, len in ipairs(r) do
      if math.type(len) == "integer" and len > 0 then
        row.entries, row.bytes = row.entries + 1, row.bytes + len
      end
    end
    return true
  end)
  if not ok then return nil, serr end
  return row
end

function Store:stats(ns)
  self:flush()
  local names = {}
  if ns then
    names[1] = ns
  else
    local ok, err = scan(self, redis.PREFIX .. ":{cache:*}:stats", function(keys)
      for _, k in ipairs(keys) do
        local name = k:match("^" .. redis.PREFIX .. ":{cache:(.*)}:stats$")
        if name then names[#names + 1] = name end
      end
      return true
    end)
    if not ok then return fail(err) end
    table.sort(names)
  end
  local rows = {}
  for _, name in ipairs(names) do
    local row, err = ns_stats(self, name)
    if not row then return fail(err) end
    rows[#rows + 1] = row
  end
  return rows
end

function Store:info()
  local m = self.lru:info()
  return { memory_bytes = m.bytes, memory_entries = m.count, memory_budget = m.budget,
           memory_hits = self.memory_hits, redis_hits = self.redis_hits, where = self.display }
end

-- ---- embeddings ------------------------------------------------------------------------

local function ekey(mid, dims, hash)
  local m = hex(C.sha256(mid)):sub(1, 16)
  return redis.key("emb:" .. m, dims, hex(hash))
end

function Store:embed_get(mid, dims, hash)
  local lk = "\1" .. mid .. "\0" .. dims .. "\0" .. hash
  local v = self.lru:get(lk)
  if not v then
    local r, err = self.cl:call_timeout(self.timeout, "GET", ekey(mid, dims, hash))
    if r == nil then return fail(err) end
    if r == false then return nil end
    v = r
    self.lru:put(lk, v, wallclock(), 0)
  end
  return vecindex.unpack(v)
end

function Store:embed_put(mid, dims, hashes, vecs)
  for i, h in ipairs(hashes) do
    local packed = vecindex.pack(vecs[i])
    local ok, err = send(self, "SET", ekey(mid, dims, h), packed)
    if not ok then return fail(err) end
    self.lru:put("\1" .. mid .. "\0" .. dims .. "\0" .. h, packed, wallclock(), 0)
  end
  return true
end

-- ---- semantic vectors: a local index fed by a Redis stream ---------------------------------

local function sem_state(self, ns, space)
  local k = ns .. "\0" .. space
  local st = self.sem[k]
  if not st then
    st = { last = "0-0", meta = {}, next_id = 1,
           skey = redis.key(tag(ns), "sem", hex(C.sha256(space)):sub(1, 16)) }
    self.sem[k] = st
  end
  return st
end

local function sem_insert(st, scope, key, packed, prompt)
  local dim = #packed // 4
  if not st.ix then st.ix = vecindex.new(dim) end
  if st.ix:dim() ~= dim then return nil end
  local id = st.next_id
  st.next_id = id + 1
  if not st.ix:add(id, scope, packed) then return nil end
  st.meta[id] = { key = key, prompt = prompt }
  return id
end

function Store:sem_add(ns, space, scope, key, vec, prompt)
  local st = sem_state(self, ns, space)
  local packed = vecindex.pack(vec)
  local id = sem_insert(st, scope, key, packed, prompt)
  if not id then return nil, errors.new("cache", "a vector of another dimension than this space's") end
  local ok, err = send(self, "XADD", st.skey, "MAXLEN", "~", M.SEM_MAXLEN, "*",
    "s", string.pack("<i8", scope), "k", key, "v", packed, "p", prompt or "", "o", self.owner)
  if not ok then return fail(err) end
  return id
end

-- Reads the stream's entries added since the last look (others' additions).
local function catch_up(self, st)
  while true do
    local r, err = self.cl:call("XREAD", "COUNT", 1000, "STREAMS", st.skey, st.last)
    if r == nil then return nil, err end
    local entries = redis.stream_entries(r)
    for _, e in ipairs(entries) do
      st.last = e.id
      local f = e.fields
      if f.o ~= self.owner and f.s and #f.s == 8 and f.k and f.v then
        sem_insert(st, (string.unpack("<i8", f.s)), f.k, f.v, f.p ~= "" and f.p or nil)
      end
    end
    if #entries < 1000 then return true end
  end
end

function Store:sem_search(ns, space, scope, vec)
  local st = sem_state(self, ns, space)
  local ok, err = catch_up(self, st)
  if not ok and self.on_error then self.on_error("reading shared prompts failed", err) end
  if not st.ix or st.ix:dim() ~= #vec then return nil end
  local id, sim = st.ix:search(scope, vec)
  if not id then return nil end
  local m = st.meta[id]
  return m.key, sim, id, m.prompt
end

function Store:sem_remove(ns, space, id)
  local st = sem_state(self, ns, space)
  if st.ix then st.ix:remove(id) end
  st.meta[id] = nil
  return true
end

-- ---- audits ---------------------------------------------------------------------------------

function Store:audit_add(ns, similarity, differs, weight)
  local akey = redis.key(tag(ns), "audit")
  local ok, err = send(self, "RPUSH", akey, ("%.6f %d %.6f"):format(similarity, differs and 1 or 0, weight))
  if not ok then return fail(err) end
  send(self, "LTRIM", akey, -M.AUDIT_MAX, -1)
  return true
end

function Store:audit_table(ns, thresholds)
  local list, err = self.cl:call("LRANGE", redis.key(tag(ns), "audit"), 0, -1)
  if not list then return fail(err) end
  local rows = {}
  for i, t in ipairs(thresholds) do
    local samples, differed, w, wd = 0, 0, 0, 0
    for _, item in ipairs(list) do
      local s, d, wt = item:match("^(%S+) (%d) (%S+)$")
      s, d, wt = tonumber(s), tonumber(d), tonumber(wt)
      if s and s >= t then
        samples, differed = samples + 1, differed + d
        w, wd = w + wt, wd + wt * d
      end
    end
    rows[i] = { threshold = t, samples = samples, differed = differed,
                false_hit_rate = w > 0 and wd / w or nil }
  end
  return rows
end

function Store:close()
  self:flush()
  self.closed = true
end

-- ---- in-flight requests shared across processes --------------------------------------------

-- KEYS: lock, value, done stream. ARGV: token, lock ms.
-- -> {2}: the answer is stored; {1}: we lead; {0, last notification id, lock ms left}
local ACQUIRE = redis.script [[
if redis.call('EXISTS', KEYS[2]) == 1 then return {2} end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1} end
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local id = '0-0'
if last[1] then id = last[1][1] end
return {0, id, redis.call('PTTL', KEYS[1])}
]]

-- KEYS: lock, done stream. ARGV: token, key hex, ok (0/1), stream length.
local RELEASE = redis.script [[
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'k', ARGV[2], 'ok', ARGV[3])
redis.call('PEXPIRE', KEYS[2], 86400000)
return 1
]]
M.ACQUIRE, M.RELEASE = ACQUIRE, RELEASE

-- Waits until the done stream says key hex finished (after id from), or
-- timeout seconds. On a connection of its own: XREAD BLOCK holds it.
function Store:wait_done(done, key_hex, from, timeout)
  local c = self.cl:borrow()
  local deadline = now() + timeout
  local found, healthy = false, true
  while not found do
    local left = deadline - now()
    if left <= 0.001 then break end
    local reply = c:call(left + 2, "XREAD", "COUNT", 100, "BLOCK", math.max(1, math.floor(left * 1000)),
      "STREAMS", done, from)
    if reply == nil then
      healthy = false
      break
    end
    for _, e in ipairs(redis.stream_entries(reply)) do
      from = e.id
      if e.fields.k == key_hex then found = true end
    end
  end
  if healthy then self.cl:give_back(c) else c:close() end
  return found
end

local function ms(s) return math.max(1, math.floor(s * 1000)) end

-- Before the call goes upstream (it missed here and no task of this
-- process is fetching it): lead it across processes, or wait for the
-- process that does. Returns a response (the other's answer) or nil (go).
local function remote_flight(store, cache, call, plan)
  local shared = cache.shared
  local key_hex = hex(plan.key)
  local t = tag(cache.ns)
  local lock, vkey, done = redis.key(t, "lock", key_hex), redis.key(t, "v", key_hex), redis.key(t, "done")
  local deadline = now() + M.MAX_WAIT
  while now() < deadline do
    local token = store.owner .. ":" .. key_hex
    local res, err = ACQUIRE:run(store.cl, { lock, vkey, done }, { token, ms(store.lock_ttl) }, store.timeout)
    if type(res) ~= "table" then
      store.on_error("sharing in-flight calls failed", err)
      return nil
    end
    if res[1] == 1 then
      plan.remote = { lock = lock, token = token, done = done, hex = key_hex,
        keeper = store.cl:every(store.lock_ttl / 3, "PEXPIRE", lock, ms(store.lock_ttl)) }
      return nil
    end
    if res[1] == 0 then
      local left = math.tointeger(res[3]) or -1
      local wait = left > 0 and left / 1000 + 0.05 or 0.05
      store:wait_done(done, key_hex, res[2], math.min(wait, deadline - now()))
    end
    local r = plan.lookup(cache, call, plan)
    if r then
      r.shared = true
      return r
    end
    if shared.db ~= store then return nil end -- the cache was closed meanwhile
  end
  return nil
end

local function remote_release(store, plan, ok)
  local rm = plan.remote
  if not rm then return end
  plan.remote = nil
  rm.keeper:stop()
  local t = RELEASE:send(store.cl, { rm.lock, rm.done }, { rm.token, rm.hex, ok and 1 or 0, M.DONE_MAXLEN })
  if t then track(store, t) end
end

-- ---- opening ------------------------------------------------------------------------------------

--- The shared state llm.cache keeps per store, for a Redis URL.
-- stores: llm.cache's table of open stores; cachemod: what llm.cache
-- lends its stores ({DEFAULT_MEMORY_BYTES=, warn_once=}).
function M.open_store(opts, stores, cachemod)
  local url = opts.redis
  local parsed, perr = redis.parse_url(url)
  if not parsed then return nil, errors.new("cache", perr.message, { status = "misuse" }) end
  local ok, why = redis.available()
  if not ok then return nil, errors.new("cache", why, { status = "io" }) end
  local id = "redis:" .. url
  local shared = stores[id]
  if shared and shared.db and not shared.db.closed then return shared end
  local store = setmetatable({
    display = parsed.display, url = url,
    cl = redis.client(url, { connect_timeout = opts.redis_timeout or M.DEFAULT_TIMEOUT }),
    timeout = opts.redis_timeout or M.DEFAULT_TIMEOUT,
    lru = lru_mod.new(math.floor(opts.memory_bytes or cachemod.DEFAULT_MEMORY_BYTES)),
    compress_above = opts.compress_above or M.DEFAULT_COMPRESS_ABOVE,
    lock_ttl = opts.lock_ttl or M.DEFAULT_LOCK_TTL,
    owner = new_owner(), counts = {}, counted_at = now(), tickets = {}, sem = {},
    memory_hits = 0, redis_hits = 0,
  }, Store)
  -- one warning per store: an unreachable Redis fails reads, stores and
  -- locks alike, and saying so three times would not help
  local warned = setmetatable({}, {
    __index = function(t) return rawget(t, 1) end,
    __newindex = function(t, k, v) rawset(t, 1, v) rawset(t, k, v) end,
  })
  shared = { db = store, path = parsed.display, inflight = {}, warned = warned, session = {}, redis = true }
  store.on_error = function(what, msg)
    cachemod.warn_once(shared, what, type(msg) == "table" and msg.message or msg)
  end
  shared.remote_flight = function(cache, call, plan)
    if plan.kind ~= "chat" then return nil end
    return remote_flight(store, cache, call, plan)
  end
  shared.remote_release = function(plan, good) remote_release(store, plan, good) end
  stores[id] = shared
  redis.before_exit(function() if not store.closed then store:flush() end end)
  return shared
end

M.Store = Store
M._encode, M._decode = encode, decode

return M
