-- llmrun serve --proxy: the gateway (lualib/llm/proxy.lua) from the
-- command line. Prints its base URL on stdout and serves until Ctrl-C.
local M = {}

M.usage = [[
usage: llmrun serve --proxy [options]

A local gateway that speaks the OpenAI and Anthropic APIs: point any app's
base URL at it (OPENAI_BASE_URL=http://127.0.0.1:PORT/v1, ANTHROPIC_BASE_URL=
http://127.0.0.1:PORT) and its calls get llmrun's cache, budgets, retries,
routes, call log (llmrun logs / llmrun report) and your Lua strategy.
Upstreams are chosen per model as llm.model does: OPENAI_BASE_URL /
OPENAI_API_KEY, ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL, else the simulator.

options:
  --port N               port (default 0: any free port)
  --host ADDR            listen address (default 127.0.0.1)
  --allow-remote         permit a non-loopback --host (needs --proxy-key)
  --config FILE          models, routes, budgets, limits (a Lua file returning
                         a table, or .json); see README, "Gateway"
  --script FILE          a strategy: on_request(req, ctx), on_response(resp, ctx)
  --cache [MODE]         answer repeats from llmrun's cache: exact (default) or
                         semantic:THRESHOLD (e.g. semantic:0.92); new answers are
                         written 50 ms at a time (config: cache_options.write_delay)
  --proxy-key K          clients must send this key (repeatable); upstream keys
                         then come from the environment or the config, and the
                         clients' keys are not passed on
  --budget USD           refuse calls once this much is spent (all models)
  --rate-limit SPEC      pace upstream calls: MODEL:rpm=N,tpm=N[,itpm=,otpm=,
                         max_concurrency=] (repeatable; "*" for every model)
  --key-budget USD       the same per proxy key (or per client key)
  --max-connections N    cap on open connections (default 1024; then 503)
  --max-body-bytes N     request body limit (default 32 MiB; then 413)
  --header-timeout S     time for a request's headers to arrive (default 10)
  --body-timeout S       time for its body (default 60)
  -q, --quiet            no summary at exit
  -h, --help             this help

Requests may carry x-llmrun-tag and x-llmrun-case headers: the call log
records them (llmrun report compares tags).
]]

local function number(v, name)
  local n = tonumber(v)
  if not n or n < 0 then error({ usage = ("option %s needs a number >= 0, got '%s'"):format(name, tostring(v)) }) end
  return n
end

--- Parses args (after "serve"); returns opts or raises {usage=} / {done=}.
function M.parse(args)
  local o = { keys = {}, limits = {} }
  local i = 1
  local function value(name)
    i = i + 1
    if args[i] == nil then error({ usage = "option " .. name .. " needs a value" }) end
    return args[i]
  end
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then io.stdout:write(M.usage) error({ done = true })
    elseif a == "--proxy" then -- the mode itself
    elseif a == "--port" then
      local p = number(value(a), a)
      if p > 65535 or p ~= math.floor(p) then error({ usage = "--port must be from 0 to 65535" }) end
      o.port = math.tointeger(p)
    elseif a == "--host" then o.host = value(a)
    elseif a == "--allow-remote" then o.allow_remote = true
    elseif a == "--config" then o.config = value(a)
    elseif a == "--script" then o.script = value(a)
    elseif a == "--cache" then
      o.cache = "exact"
      local nxt = args[i + 1]
      if nxt and (nxt == "exact" or nxt:match("^semantic")) then
        i = i + 1
        o.cache = nxt
      end
    elseif a:match("^%-%-cache=") then o.cache = a:match("^%-%-cache=(.*)$")
    elseif a == "--proxy-key" then o.keys[#o.keys + 1] = value(a)
    elseif a == "--budget" then o.budget = number(value(a), a)
    elseif a == "--rate-limit" then
      local ok, t = pcall(require("llm.limits").parse_env, value(a))
      if not ok then error({ usage = "--rate-limit: " .. tostring(t) }) end
      o.rate_limits = o.rate_limits or {}
      for k, v in pairs(t) do o.rate_limits[k] = v end
    elseif a == "--key-budget" then o.key_budget = number(value(a), a)
    elseif a == "--max-connections" then o.limits.max_connections = math.floor(number(value(a), a))
    elseif a == "--max-body-bytes" then o.limits.max_body_bytes = math.floor(number(value(a), a))
    elseif a == "--header-timeout" then o.limits.header_timeout = number(value(a), a)
    elseif a == "--body-timeout" then o.limits.body_timeout = number(value(a), a)
    elseif a == "-q" or a == "--quiet" then o.quiet = true
    else error({ usage = "unknown option '" .. a .. "'" }) end
    i = i + 1
  end
  if o.cache and o.cache ~= "exact" then
    local t = o.cache:match("^semantic:([%d.]+)$")
    if o.cache == "semantic" then t = "0.92" end
    if not t or not tonumber(t) or tonumber(t) <= 0 or tonumber(t) > 1 then
      error({ usage = "--cache takes exact or semantic:THRESHOLD (0 < THRESHOLD <= 1), got '" .. o.cache .. "'" })
    end
    o.threshold = tonumber(t)
  end
  return o
end

local function is_loopback(host)
  return host == "localhost" or host == "::1" or host:match("^127%.%d+%.%d+%.%d+$") ~= nil
end

--- Runs the gateway; returns an exit status (or serves until Ctrl-C).
function M.run(o, fail)
  local S = require "llm.proxy_strategy"
  local host = o.host or "127.0.0.1"
  local cfg = {}
  if o.config then
    local c, err = S.config(o.config)
    if not c then return fail("--config: " .. tostring(err)) end
    cfg = c
  end
  local keys = o.keys
  if #keys == 0 and type(cfg.proxy_keys) == "table" then keys = cfg.proxy_keys end
  if not is_loopback(host) then
    if not o.allow_remote then
      return fail(("refusing to listen on %s, which is not a loopback address (--allow-remote permits it, "
        .. "with --proxy-key)"):format(host))
    end
    if #keys == 0 then return fail("--allow-remote needs --proxy-key: a gateway open to the network must check its clients") end
  end
  local strategy
  if o.script then
    local s, err = S.load(o.script)
    if not s then
      io.stderr:write("llmrun serve: --script: ", tostring(err), "\n")
      return 1
    end
    strategy = s
  end
  local cache
  local mode = o.cache or cfg.cache
  if mode == true then mode = "exact" end
  if mode then
    local copts = {}
    for k, v in pairs(type(cfg.cache_options) == "table" and cfg.cache_options or {}) do copts[k] = v end
    -- the answers of the last 50 ms are stored in one transaction (one
    -- per answer was a fifth of the CPU of a forwarded request); another
    -- process sees them that much later
    if copts.write_delay == nil then copts.write_delay = 0.05 end
    if mode == "exact" then
      cache = assert(llm.cache.open(copts))
    else
      local t = o.threshold or tonumber(tostring(mode):match("([%d.]+)$")) or 0.92
      local so = {}
      for k, v in pairs(copts) do so[k] = v end
      so.threshold = t
      so.embed = llm.model(cfg.semantic_embed or "text-embedding-3-small")
      cache = assert(llm.cache.semantic(so))
    end
  end
  local budget = o.budget or (type(cfg.budget) == "table" and cfg.budget.usd) or (type(cfg.budget) == "number" and cfg.budget)
  if budget or type(cfg.budget) == "table" then
    local b = type(cfg.budget) == "table" and cfg.budget or {}
    local bo = { usd = budget, models = b.models, name = "proxy" }
    M.budget = llm.budget(bo)
  end
  -- rate limits per upstream model (llm.limits; each upstream key gets its
  -- own limiter): the config's rate_limits, then --rate-limit
  local rl = {}
  for k, v in pairs(type(cfg.rate_limits) == "table" and cfg.rate_limits or {}) do rl[k] = v end
  for k, v in pairs(o.rate_limits or {}) do rl[k] = v end
  for name, spec in pairs(rl) do llm.limits.set(name, spec) end
  local limits = {}
  for k, v in pairs(type(cfg.limits) == "table" and cfg.limits or {}) do limits[k] = v end
  for k, v in pairs(o.limits) do limits[k] = v end
  local p, err = require("llm.proxy").start {
    host = host, port = o.port or cfg.port or 0, config = cfg, strategy = strategy, cache = cache,
    proxy_keys = #keys > 0 and keys or nil, key_budget = o.key_budget or cfg.key_budget, limits = limits,
  }
  if not p then
    io.stderr:write("llmrun serve: ", tostring(err), "\n")
    return 1
  end
  io.stdout:write(p.url, "/v1\n")
  io.stdout:flush()
  io.stderr:write("llmrun: gateway listening on ", p.url, "/v1 (OpenAI) and ", p.url,
    " (Anthropic)", cache and (", cache " .. (o.cache or tostring(mode))) or "",
    strategy and (", strategy " .. o.script) or "", #keys > 0 and ", proxy keys required" or "",
    " (Ctrl-C to stop)\n")
  if not o.quiet then
    require("_llm.host").on_exit(function()
      local st = p:stats()
      io.stderr:write(("llmrun: gateway answered %d requests (%d from the cache), $%.6f upstream\n"):format(
        st.requests, st.cache_hits.exact + st.cache_hits.semantic, st.cost_usd))
    end)
  end
  p.server:wait()
  return 0
end

return M
