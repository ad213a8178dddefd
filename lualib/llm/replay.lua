-- llm.replay: a run answered from its recording (llm.cassette), through
-- the normal HTTP path.
--
--   LLMRUN_REPLAY=run.cassette llmrun exp.lua
--   llm.replay.start(path [, opts]) -> info | nil, err    llm.replay.stop()
--   llm.replay.active() -> info | nil                     llm.replay.stats()
--
-- opts (and their variables for LLMRUN_REPLAY):
--   replay  "timed" (default; LLMRUN_REPLAY_MODE): each response comes at
--           its recorded pace, time to first token and the gaps between
--           chunks kept; "instant": all at once, retries without delays
--   speed   N > 0 (LLMRUN_REPLAY_SPEED): timed, N times faster
--   missing what a request with no recording gets (LLMRUN_REPLAY_MISSING):
--           "error" (default: the call fails with kind "replay", naming
--           the nearest recorded request and what differs), "sim" (the
--           simulator answers; the call counts as simulated), "live" (the
--           provider answers, and the exchange is added to the cassette)
--   ignore  body fields left out of matching (LLMRUN_REPLAY_IGNORE=a,b;
--           default user, metadata; "endpoint" ignores the base URL too)
--
-- How. Models resolve as they did when recording: the provider variables
-- come from the cassette (base URLs; keys as a placeholder unless
-- "live" needs the real one), so the user's script does not change. A
-- tap in the send stage (llm.pipeline's replay.tap) matches each logical request on
-- its canonical form (llm.cache_canon, the cache key's, minus the
-- ignored fields) and sends its attempts to the replayer, a loopback
-- server on its own thread (src/store/replay_server.h) that plays the
-- recorded exchange: status, headers, the body in its recorded pieces
-- at their recorded times, measured from the client's own start of the
-- call (plus the attempt's recorded offset into it). Curl, SSE parsing, retries, metrics and the call log all run
-- as live. Identical requests (sampling) get their recorded answers in
-- the order they were recorded. An attempt that failed without a
-- response (a refused connection, a timeout) is replayed as the same
-- error after the same wait, without a connection.
local loop = require "_llm.loop"
local json = require "_llm.json"
local server_lib = require "_llm.replay"
local host = require "_llm.host"
local pipeline = require "llm.pipeline"
local transport = require "llm.transport"
local canon = require "llm.cache_canon"
local cassette = require "llm.cassette"
local errors = require "llm.errors"
local record = require "llm.record"
local untrusted = require "llm.untrusted"

local M = {}

M.DEFAULT_IGNORE = { "user", "metadata" }
M.PLACEHOLDER_KEY = "llmrun-replay-no-key"

local st -- the active replay, or nil

-- ---- matching ---------------------------------------------------------------------

-- Which recorded answers a call may take: a stream's recording cannot
-- answer a buffered call (the bytes differ), so the kind is part of it.
local function kind_class(kind)
  return kind == "stream" and "stream" or kind == "embed" and "embed" or "chat"
end

-- The canonical text with the ignored fields left out.
local function strip(text)
  if not st.ignore_any then return text end
  local ok, t = pcall(json.decode, text)
  if not ok or type(t) ~= "table" then return text end
  local changed = false
  if st.ignore_endpoint then t.endpoint, changed = nil, true end
  if type(t.body) == "table" then
    for f in pairs(st.ignore) do
      if t.body[f] ~= nil then t.body[f], changed = nil, true end
    end
  end
  if not changed then return text end
  return canon.encode(t) or text
end

-- A call's match key, or nil, why: the request as made, or with sent =
-- true as it goes out.
local function call_key(call, sent)
  local text, why = record.canonical(call, sent)
  if not text then return nil, why end
  if st.ignore_any then
    -- the common case: nothing ignored is in the body, and the canonical
    -- text is its own stripped form (decoding it and writing it again
    -- gives the same bytes)
    local body = sent and call.send_body or call.body
    local has = st.ignore_endpoint
    if not has and type(body) == "table" then
      for f in pairs(st.ignore) do if body[f] ~= nil then has = true break end end
    end
    if has then text = strip(text) end
  end
  return kind_class(call.kind) .. "\n" .. text, text
end

-- Reads what matching and ordering need (no bodies), kept small: the
-- index stays in the Lua heap for the whole replay and every collection
-- walks it (5,000 recorded calls took 10.5 MB as query rows, and a live
-- heap that size costs the client a tenth of its calls/s). ->
--   queues  match key -> the recorded calls with exchanges, in order
--   list    one entry per distinct request, for "nearest":
--           {key=, kind=, model=, id=, tag=, case_id=} (the first call)
--   events  for llm.replay_order: parallel arrays kind, call, key, t, n
--   by_id   call id -> {id=, t_start=, send_key=, attempts=}, attempts
--           a list of exchanges {ex_id, status, end_ms, path, t_start,
--           error} (EX_* below)
local EX_ID, EX_STATUS, EX_END, EX_PATH, EX_T, EX_ERROR = 1, 2, 3, 4, 5, 6

local function load_index(cas)
  local ex, err2 = cas:query([[SELECT id, call, status, error, end_ms, path, t_start
    FROM exchanges ORDER BY call, attempt]])
  if not ex then return nil, err2 end
  local by_call = {}
  for _, e in ipairs(ex) do
    local list = by_call[e.call]
    if not list then
      list = {}
      by_call[e.call] = list
    end
    list[#list + 1] = { e.id, e.status, e.end_ms, e.path, e.t_start, e.error }
  end
  ex = nil -- the rows are garbage now, before the calls' come
  local rows, err = cas:query([[SELECT c.id, c.kind, c.tag, c.case_id, c.model, c.t_start, c.t_end,
    c.begin_ev, c.finish_ev, r.canon, rs.canon AS sent_canon FROM calls c
    LEFT JOIN requests r ON r.id = c.request LEFT JOIN requests rs ON rs.id = c.sent_request
    ORDER BY c.id]])
  if not rows then return nil, err end
  local queues, list, keys, by_id = {}, {}, {}, {}
  -- events as they come, sorted by their number below
  local n, ev_no, ev_kind, ev_call, ev_key, ev_t = 0, {}, {}, {}, {}, {}
  local function event(no, kind, id, key, t)
    n = n + 1
    ev_no[n], ev_kind[n], ev_call[n], ev_key[n], ev_t[n] = no, kind, id, key or false, t or false
  end
  for _, r in ipairs(rows) do
    if r.canon then
      local kind = kind_class(r.kind)
      -- one string per distinct request (and kind), shared by its calls and events
      local of_kind = keys[kind]
      if not of_kind then
        of_kind = {}
        keys[kind] = of_kind
      end
      local key = of_kind[r.canon]
      if not key then
        key = kind .. "\n" .. strip(r.canon)
        of_kind[r.canon] = key
      end
      local send_key = key
      if r.sent_canon then
        send_key = of_kind[r.sent_canon]
        if not send_key then
          send_key = kind .. "\n" .. strip(r.sent_canon)
          of_kind[r.sent_canon] = send_key
        end
      end
      local attempts = by_call[r.id]
      if attempts then
        by_id[r.id] = { id = r.id, t_start = r.t_start, send_key = send_key, attempts = attempts }
        local q = queues[send_key]
        if not q then
          q = { pos = 1 }
          queues[send_key] = q
          list[#list + 1] = { key = send_key, kind = kind, model = r.model, id = r.id, tag = r.tag,
                              case_id = r.case_id, rkind = r.kind }
        end
        q[#q + 1] = r.id
      end
      -- a call with no canonical request cannot be told apart: not ordered
      if r.begin_ev then event(r.begin_ev, "begin", r.id, key, r.t_start) end
      if r.finish_ev then event(r.finish_ev, "finish", r.id, nil, r.t_end) end
    end
  end
  local perm = {}
  for i = 1, n do perm[i] = i end
  table.sort(perm, function(x, y) return ev_no[x] < ev_no[y] end)
  local events = { kind = {}, call = {}, key = {}, t = {}, n = n }
  for i = 1, n do
    local p = perm[i]
    events.kind[i], events.call[i], events.key[i], events.t[i] = ev_kind[p], ev_call[p], ev_key[p], ev_t[p]
  end
  return queues, list, events, by_id
end

-- The recorded call that answers a call: the one its begin was matched
-- to (the ordered replay knows it), else the first unused one recorded
-- for the same request.
local function take_entry(call, key)
  local used = st.used
  local id = call.replay_recorded
  local r = id and st.by_id[id]
  if r and not used[id] and r.send_key == key then
    used[id] = true
    return r
  end
  local q = key and st.queues[key]
  if not q then return nil, q end
  while q[q.pos] and used[q[q.pos]] do q.pos = q.pos + 1 end
  id = q[q.pos]
  if not id then return nil, q end
  used[id] = true
  return st.by_id[id], q
end

-- ---- what differs, for a request with no recording ------------------------------------

local diff = require("llm.cassette_diff").diff

local function nearest(kind, text, model_name)
  local ok, now = pcall(json.decode, text)
  if not ok then return nil end
  local best, best_diff
  local looked = 0
  for pass = 1, 2 do -- the same model first, then any
    for _, c in ipairs(st.list) do
      if looked >= 2000 then break end
      if c.kind == kind and ((pass == 1) == (c.model == model_name)) then
        looked = looked + 1
        local ok2, rec = pcall(json.decode, c.key:sub(#c.kind + 2)) -- "chat\n{...}"
        if ok2 then
          local d = diff(rec, now, "", { n = 0 }, 6)
          if not best_diff or d.n < best_diff.n then best, best_diff = c, d end
        end
      end
    end
    if best then break end
  end
  return best, best_diff
end

local function describe(call)
  local m = call.model or {}
  local body = call.send_body or call.body or {}
  local what = call.kind == "embed" and (#(body.input or {}) .. " input(s)")
    or ((type(body.messages) == "table" and #body.messages or 0) .. " message(s)")
  return ("%s %s (%s %s), %s%s%s"):format(call.kind, tostring(m.name), tostring(m.provider),
    canon.endpoint(m), what, call.tag and (", tag " .. tostring(call.tag)) or "",
    call.case and (", case " .. tostring(call.case)) or "")
end

local function miss_message(call, key, text, q)
  local lines = {}
  if q and #q > 0 then
    lines[1] = ("no recorded answer left for this request in %s: it was recorded %d time%s and "
      .. "all were replayed (identical requests replay their recorded answers in order)")
      :format(st.path, #q, #q == 1 and "" or "s")
    lines[2] = "  request: " .. describe(call)
  else
    lines[1] = ("no recording of this request in %s"):format(st.path)
    lines[2] = "  request: " .. describe(call)
    local kind = key and key:match("^(%a+)\n")
    local best, d = nil, nil
    if text then best, d = nearest(kind, text, (call.model or {}).name) end
    if best then
      local r = best
      lines[#lines + 1] = ("  nearest recorded: call %d (%s %s%s%s), differing in %d place%s:"):format(
        r.id, r.rkind, tostring(r.model), r.tag and (", tag " .. r.tag) or "",
        r.case_id and (", case " .. r.case_id) or "", d.n, d.n == 1 and "" or "s")
      for _, l in ipairs(d) do lines[#lines + 1] = "    " .. l end
      if d.n > #d then lines[#lines + 1] = ("    ... and %d more"):format(d.n - #d) end
    elseif kind then
      lines[#lines + 1] = "  the cassette has no " .. kind .. " request to compare it with"
    end
  end
  local ig = {}
  for f in pairs(st.ignore) do ig[#ig + 1] = f end
  if st.ignore_endpoint then ig[#ig + 1] = "endpoint" end
  table.sort(ig)
  lines[#lines + 1] = ("  (matching ignores: %s; LLMRUN_REPLAY_MISSING=sim or live answers such requests)")
    :format(#ig > 0 and table.concat(ig, ", ") or "nothing")
  return table.concat(lines, "\n")
end

-- ---- the send stage's tap ------------------------------------------------------------

local function decode_error(text)
  local ok, t = pcall(json.decode, text or "{}")
  return ok and type(t) == "table" and t or {}
end

-- A replayed stream whose end waits for its turn (llm.replay_order):
-- the caller reads the end, and finishes the call, in recorded order.
local Gated = {}
Gated.__index = Gated
function Gated:next()
  local ev, err = self.s:next()
  if ev == nil and not self.done then
    self.done = true
    st.order:finish(self.call_id)
  end
  return ev, err
end
for _, name in ipairs { "head", "status", "peek", "read_all", "close", "recording" } do
  Gated[name] = function(self, ...) return self.s[name](self.s, ...) end
end

-- When a timed attempt's recorded clock starts. Within ANCHOR_WINDOW of
-- now: the call's start plus the attempt's recorded offset into its call
-- (scaled), so the pieces come when they came after the call began,
-- whatever this replay spent before sending (its matching, a collection,
-- a first connection: a few milliseconds more or less than the
-- recording's; a stall of the recording before its request went out is
-- replayed too). Further off, the replay waited more or less than the
-- recording before sending (a what-if with other rate limits, a retry's
-- other backoff): its own send is the start, as a provider would see it.
M.ANCHOR_WINDOW = 0.02
local function attempt_start(entry, ex, call)
  local now = loop.now()
  local off = ex[EX_T] and entry.t_start and ex[EX_T] - entry.t_start
  if off and off >= 0 and call and call.t0 then
    local t = call.t0 + off / st.speed
    if math.abs(t - now) <= M.ANCHOR_WINDOW then return t end
  end
  return now
end

-- The header lines that go to the replayer: the caller's, less the
-- credentials (the replayer needs none). A model's lines are one table
-- for all its calls, so each table is filtered once.
local replayer_lines = setmetatable({}, { __mode = "k" })

local function lines_for_replayer(lines)
  local h = replayer_lines[lines]
  if h then return h end
  h = {}
  for _, line in ipairs(lines) do
    local name = line:match("^([^:]+):")
    if not (name and transport.is_secret_header(name)) then h[#h + 1] = line end
  end
  replayer_lines[lines] = h
  return h
end

-- A metatable that reads a network table's fields, one per table.
local proxies = setmetatable({}, { __mode = "k" })

local function proxy_of(net)
  local mt = proxies[net]
  if not mt then
    mt = { __index = net }
    proxies[net] = mt
  end
  return mt
end

-- The replayer's URL for one attempt of a recorded call.
local function replay_send(entry, send, call)
  return function(kind, net, _, body, key_line, n)
    local ex = entry.attempts[n + 1] or entry.attempts[#entry.attempts]
    local final = n + 1 >= #entry.attempts
    st.stats.attempts = st.stats.attempts + 1
    local t0 = st.timed and attempt_start(entry, ex, call) or 0
    if ex[EX_STATUS] == 0 then
      -- no HTTP response was recorded: the same failure after the same wait
      if st.timed and (ex[EX_END] or 0) > 0 then
        local wait = t0 + ex[EX_END] / 1000 / st.speed - loop.now()
        if wait > 0 then loop.sleep(wait) end
      end
      local e = decode_error(ex[EX_ERROR])
      if final and st.order then st.order:finish(entry.id) end
      return nil, errors.new(e.kind or "transport", e.message or "(replayed failure)",
        { stalled = e.stalled, replayed = true })
    end
    -- the attempt's network table: net's fields (read through __index by
    -- _llm.http), its own header lines; not a copy of every field
    local r = setmetatable({}, proxy_of(net))
    local base = net.headers and lines_for_replayer(net.headers) or {}
    local h = table.move(base, 1, #base, 1, {})
    h[#h + 1] = st.timed and ("x-llmrun-replay: %d %.6f %.17g"):format(ex[EX_ID], t0, st.speed)
      or ("x-llmrun-replay: " .. ex[EX_ID] .. " 0 0")
    r.headers = h
    local a, b = send(kind, r, st.url .. ex[EX_PATH], body, key_line, n)
    if final and st.order then
      if kind == "stream" and a then
        -- a 2xx stream finishes when its reader reaches the end
        if ex[EX_STATUS] >= 200 and ex[EX_STATUS] < 300 then
          return setmetatable({ s = a, call_id = entry.id }, Gated), b
        end
      end
      st.order:finish(entry.id)
    end
    return a, b
  end
end

-- "/chat/completions" of ".../v1/chat/completions"
local function path_tail(url)
  return (tostring(url):match("/v%d+(/.*)$") or tostring(url):match("^%a[%w+.-]*://[^/]*(/.*)$") or "/")
end

-- The simulator's URL for a request with no recording (policy "sim").
local function sim_send(url, call, send)
  local base = (call.model.cfg and call.model.cfg.base_url) or ""
  local rest = url:sub(1, #base) == base and url:sub(#base + 1) or path_tail(url)
  local sim_url = require("llm.sim").ensure()
  return function(kind, net, _, body, key_line, n)
    return send(kind, net, sim_url .. rest, body, key_line, n)
  end
end

-- replay.tap, a send tap (nearest the network): a recorded request's
-- attempts go to the replayer; one with no recording fails, goes to the
-- simulator or goes live (opts.missing).
local function tap(net, url, send, call)
  if not st or not call then return nil end -- not a model call: untouched
  local key, text = call.replay_key, call.replay_text
  if key == nil or call.send_body then key, text = call_key(call, true) end
  local entry, q = take_entry(call, key)
  if entry then
    call.replay_entry = entry
    st.stats.replayed = st.stats.replayed + 1
    local rnet
    if not st.timed then -- instantly: no waits between attempts
      rnet = st.instant_nets[net]
      if not rnet then
        rnet = {}
        for k, v in pairs(net) do rnet[k] = v end
        rnet.retry_scale = 0
        st.instant_nets[net] = rnet
      end
    end
    return replay_send(entry, send, call), rnet
  end
  st.stats.missing = st.stats.missing + 1
  local message = miss_message(call, key, text, q)
  if st.first_miss == nil then st.first_miss = message end
  if st.missing == "live" then
    call.replay_live = true -- llm.record adds it to the cassette
    st.stats.live = st.stats.live + 1
    return nil
  elseif st.missing == "sim" then
    call.replay_source = "sim"
    -- the call counts as simulated wherever it is measured
    call.model = setmetatable({ simulated = true }, { __index = call.model })
    st.stats.sim = st.stats.sim + 1
    return sim_send(url, call, send)
  end
  return nil, errors.new("replay", message, { retryable = false, missing = true })
end

-- replay.begin, a before-stage: every call keeps its recorded turn
-- (llm.replay_order); it runs first, before a cache looks at the call.
local function on_before(call)
  if not st then return end
  local key, text = call_key(call)
  call.replay_key, call.replay_text = key, text
  if st.order then
    local t = loop.now()
    call.replay_recorded = st.order:begin(key)
    -- a call held back to keep the recorded order starts now: the wait
    -- is the replay's, not part of the answer's latency
    if loop.now() - t > 0.0001 then call.t0 = loop.now() end
  end
end

-- replay.turn, a decided-stage: a call a cache (or a budget) decided waits
-- for its finish's turn here, where it still may (a follower that shared another call's answer
-- resumes when the scheduler gets to it, which the recording did later).
local function on_decided(call)
  if st and st.order and call.replay_recorded then st.order:finish(call.replay_recorded) end
end

-- replay.mark, a finish-stage: a replayed answer says so (r.replayed).
local function on_finish(call, resp)
  if not st then return end
  -- a call that finished where it could not wait (a cache hit, a failure)
  if st.order and call.replay_recorded then st.order:finished(call.replay_recorded) end
  if not resp then return end
  if call.replay_source == "sim" then
    resp.simulated, resp.replayed = true, "sim"
  elseif call.replay_entry then
    resp.replayed = true
  elseif call.replay_live then
    resp.replayed = "live"
  end
end

M.before_stage, M.decided_stage, M.send_tap, M.finish_stage = on_before, on_decided, tap, on_finish

-- ---- starting and stopping ---------------------------------------------------------------

local ENV_VALUES = { "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "OLLAMA_HOST" }
local ENV_KEYS = { "OPENAI_API_KEY", "ANTHROPIC_API_KEY" }

local function replay_env(cas, live)
  local recorded = cas:env()
  local env = {}
  for _, k in ipairs(ENV_VALUES) do env[k] = type(recorded[k]) == "string" and recorded[k] or false end
  for _, k in ipairs(ENV_KEYS) do
    if recorded[k] then
      local real = os.getenv(k)
      env[k] = (live and real and real ~= "") and real or M.PLACEHOLDER_KEY
    else
      env[k] = false
    end
  end
  return env
end

local function check_opts(opts)
  for k in pairs(opts) do
    if k ~= "replay" and k ~= "speed" and k ~= "missing" and k ~= "ignore" and k ~= "order" then
      error("llm.replay.start: unknown option '" .. tostring(k) .. "'", 3)
    end
  end
  local mode = opts.replay or "timed"
  if mode ~= "timed" and mode ~= "instant" then
    error("llm.replay.start: replay must be \"timed\" or \"instant\", got " .. tostring(mode), 3)
  end
  local speed = opts.speed or 1
  if type(speed) ~= "number" or not (speed > 0) or speed == math.huge then
    error("llm.replay.start: speed must be a number > 0, got " .. tostring(opts.speed), 3)
  end
  local missing = opts.missing or "error"
  if missing ~= "error" and missing ~= "sim" and missing ~= "live" then
    error("llm.replay.start: missing must be \"error\", \"sim\" or \"live\", got " .. tostring(missing), 3)
  end
  local ignore = opts.ignore or M.DEFAULT_IGNORE
  if type(ignore) ~= "table" then error("llm.replay.start: ignore must be a list of field names", 3) end
  if opts.order ~= nil and type(opts.order) ~= "boolean" then
    error("llm.replay.start: order must be a boolean", 3)
  end
  return mode, speed, missing, ignore, opts.order ~= false
end

-- The collector during a timed replay: Lua's default pace (step
-- multiplier 100) makes a task that allocates a few kilobytes sweep tens
-- of thousands of objects at once, holding the loop for milliseconds
-- (measured: 3-10 ms, every second or so, in a 50-stream replay); a
-- replayed piece read that late is a TTFT off by as much. A tenth of
-- the pace, in steps of 256 bytes, spreads a cycle over ten times more
-- allocation (the heap grows a little more between cycles). stop()
-- restores Lua's defaults.
M.GC_TIMED = { stepmul = 10, stepsize = 8 }
local LUA_GC_DEFAULT = { stepmul = 100, stepsize = 13 }

local function set_gc(p)
  collectgarbage("incremental", 0, p.stepmul, p.stepsize) -- 0: the pause as it is
end

local exit_hooked = false

--- Starts replaying path. Misuse raises; a cassette that cannot be used
-- (missing, damaged, newer) returns nil, err (kind "cassette").
function M.start(path, opts)
  if type(path) ~= "string" or path == "" then
    error("bad argument #1 to 'llm.replay.start' (file path expected)", 2)
  end
  opts = opts or {}
  if type(opts) ~= "table" then error("bad argument #2 to 'llm.replay.start' (table expected)", 2) end
  local mode, speed, missing, ignore, ordered = check_opts(opts)
  if st then error("llm.replay.start: already replaying " .. st.path, 2) end
  if record.active() == path then
    error(("llm.replay: %s is being recorded; replay another cassette "
      .. "(LLMRUN_RECORD and LLMRUN_REPLAY name the same cassette)"):format(path), 2)
  end
  local cas, err = cassette.open(path)
  if not cas then return nil, err end
  local ok, cerr = cas:check()
  if not ok then
    cas:close()
    return nil, cerr
  end
  local ig, ig_endpoint, any = {}, false, false
  for _, f in ipairs(ignore) do
    if f == "endpoint" then ig_endpoint = true else ig[tostring(f)] = true end
    any = true
  end
  st = { path = path, cas = cas, timed = mode == "timed", mode = mode, speed = speed,
         missing = missing, ignore = ig, ignore_endpoint = ig_endpoint, ignore_any = any, ordered = ordered,
         stats = { replayed = 0, attempts = 0, missing = 0, sim = 0, live = 0 },
         instant_nets = setmetatable({}, { __mode = "k" }) } -- net -> its copy with no retry waits
  local queues, list, events, by_id = load_index(cas)
  if not queues then
    cas:close()
    st = nil
    return nil, list
  end
  st.queues, st.list, st.by_id, st.used = queues, list, by_id, {}
  if st.ordered then st.order = require("llm.replay_order").new(events, st.timed and speed or 0) end
  local server, serr = server_lib.start(path)
  if not server then
    cas:close()
    st = nil
    return nil, errors.new("cassette", serr.message, { path = path })
  end
  st.server, st.url = server, server:url()
  if st.timed then
    set_gc(M.GC_TIMED)
    st.gc_set = true
  end
  require("llm.providers.common").env_override = replay_env(cas, missing == "live")
  pipeline.use("replay") -- replay.begin, replay.turn, replay.tap, replay.mark
  if missing == "live" then
    local rok, rerr = record.start(path, { mode = "append", only = true, source = "replay --live" })
    if not rok then
      M.stop()
      return nil, rerr
    end
  end
  if not exit_hooked then
    exit_hooked = true
    host.on_exit(function()
      if not st then return end
      local line = M.summary()
      M.stop()
      if line then io.stderr:write(line, "\n") end
    end)
  end
  return M.active()
end

function M.stop()
  if not st then return end
  pipeline.drop("replay")
  if st.missing == "live" and record.active() == st.path then record.stop() end
  require("llm.providers.common").env_override = nil
  st.server:stop()
  st.cas:close()
  if st.gc_set then set_gc(LUA_GC_DEFAULT) end
  st = nil
end

--- {path=, recorded_at=, providers=, mode=, speed=, missing=} | nil
function M.active()
  if not st then return nil end
  return { path = st.path, recorded_at = st.cas.meta.created_at, recorded = st.cas:recorded_date(),
           providers = st.cas:providers_text(), mode = st.mode, speed = st.speed, missing = st.missing,
           source = st.cas.meta.source, url = st.url }
end

function M.stats()
  if not st then return nil end
  local s = {}
  for k, v in pairs(st.stats) do s[k] = v end
  s.server = st.server:stats()
  s.order = st.order and st.order.stats or nil
  s.first_miss = st.first_miss
  return s
end

--- The line a report's header carries while replaying, or nil.
function M.banner()
  local a = M.active()
  if not a then return nil end
  local how = a.mode == "timed" and (a.speed == 1 and "at the recorded pace" or
    ("timed, %gx the recorded pace"):format(a.speed)) or "instantly"
  return ("REPLAYED: answers from %s, recorded %s from %s, replayed %s through the normal HTTP path%s.")
    :format(a.path, a.recorded, a.providers, how,
      a.missing ~= "error" and ("; requests with no recording went to the " ..
        (a.missing == "sim" and "simulator" or "provider")) or "")
end

--- What a JSON report carries while replaying (nil otherwise).
function M.stamp()
  local a = M.active()
  if not a then return nil end
  return { cassette = a.path, recorded_at = a.recorded_at, providers = a.providers, mode = a.mode,
           speed = a.speed, missing = a.missing }
end

--- The exit line: what was replayed, and what had no recording.
function M.summary()
  if not st then return nil end
  local s = st.stats
  local line = ("llmrun: REPLAYED %d call%s from %s (recorded %s from %s)"):format(s.replayed,
    s.replayed == 1 and "" or "s", st.path, st.cas:recorded_date(), st.cas:providers_text())
  if s.missing > 0 then
    line = line .. ("; %d request%s had no recording (%s)"):format(s.missing, s.missing == 1 and "" or "s",
      st.missing == "error" and "they failed" or st.missing == "sim" and "the simulator answered"
      or "the provider answered; added to the cassette")
    if st.missing == "error" and st.first_miss then line = line .. "; the first:\n" .. untrusted.clean(st.first_miss) end
  end
  local o = st.order and st.order.stats
  if o and (o.skipped > 0 or o.out_of_turn > 0) then
    line = line .. ("\nllmrun: the recorded order of calls was not kept everywhere: %d event%s out of turn, "
      .. "%d not seen (skipped)%s; a run whose outcome hangs on that order may differ from its recording")
      :format(o.out_of_turn, o.out_of_turn == 1 and "" or "s", o.skipped,
        o.given_up and ", then the order was given up (the run does not follow its recording)" or "")
  end
  return line
end

-- ---- from the environment -------------------------------------------------------------------

local function env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then return nil end
  return v
end

--- LLMRUN_REPLAY / LLMRUN_RECORD at start-up (init.lua calls this when
-- either is set). A cassette that cannot be used stops the run.
-- "./a//b.cassette" and "a/b.cassette" name one file
local function same_file(a, b)
  local function norm(p) return (p:gsub("/+", "/"):gsub("^%./", ""):gsub("/%./", "/")) end
  return norm(a) == norm(b)
end

function M.install_from_env()
  local rp, rc = env("LLMRUN_REPLAY"), env("LLMRUN_RECORD")
  if rp and rc and same_file(rp, rc) then
    error(("llmrun: LLMRUN_RECORD and LLMRUN_REPLAY name the same cassette (%s): a replay "
      .. "cannot record into the file it reads; record into another file"):format(rp), 0)
  end
  if rp then
    local ignore
    local iv = os.getenv("LLMRUN_REPLAY_IGNORE")
    if iv ~= nil then
      ignore = {}
      for f in iv:gmatch("[^,%s]+") do ignore[#ignore + 1] = f end
    end
    local speed = env("LLMRUN_REPLAY_SPEED")
    if speed and not tonumber(speed) then
      error("llmrun: LLMRUN_REPLAY_SPEED must be a number > 0, got '" .. speed .. "'", 0)
    end
    local ok, a, b = pcall(M.start, rp, { replay = env("LLMRUN_REPLAY_MODE"), speed = tonumber(speed),
      missing = env("LLMRUN_REPLAY_MISSING"), ignore = ignore })
    if not ok then error("llmrun: LLMRUN_REPLAY: " .. tostring(a):gsub("^llm%.replay%.start: ", ""), 0) end
    if not a then error("llmrun: LLMRUN_REPLAY: " .. tostring(b.message or b), 0) end
  end
  if rc then
    local ok, a, b = pcall(record.start, rc, { mode = env("LLMRUN_RECORD_MODE") })
    if not ok then error("llmrun: LLMRUN_RECORD: " .. tostring(a):gsub("^llm%.record[%.%w_]*: ", ""), 0) end
    if not a then error("llmrun: LLMRUN_RECORD: " .. tostring(b.message or b), 0) end
  end
end

return M
