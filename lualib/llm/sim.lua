-- llm.sim: the built-in OpenAI-compatible simulator, a real HTTP server on
-- loopback that runs on its own thread inside llmrun (src/sim/sim.c). Providers
-- call M.ensure() for its base URL; tests and experiments configure
-- latency profiles, faults and limits here.
--
--   local url = llm.sim.ensure()            -- "http://127.0.0.1:PORT/v1"
--   llm.sim.configure{ faults = { ["429"] = 0.1 }, retry_after_ms = 200 }
--   print(llm.sim.stats().requests)
--   llm.sim.stop()
--
-- The configuration a server gets is, lowest first: the default latency
-- profiles (llm.sim_profiles, when present), the LLMRUN_SIM_* environment
-- variables (M.from_env), then every M.configure{} call merged in order.
local C = require "_llm.sim"

local M = {}

local server      -- the shared in-process server, or nil
local user = {}   -- what M.configure calls asked for, merged
local tasks = {}  -- labelled tasks registered with M.task: {spec, ...} in order

-- ---- profiles ------------------------------------------------------------

local function number_or_nil(v)
  return type(v) == "number" and v or nil
end

-- One latency profile in the C binding's shape. Accepts ttft_ms (or
-- ttft / ttft_s in seconds, as llm.sim_profiles writes it), tokens_per_s
-- (or tps / tokens_per_second), jitter, and prefill_ms_per_1k (or
-- prefill_per_1k in seconds); other fields (source, notes) are ignored.
local function profile_of(spec)
  local function ms(ms_key, s_keys)
    local v = number_or_nil(spec[ms_key])
    if v then return v end
    for _, k in ipairs(s_keys) do
      v = number_or_nil(spec[k])
      if v then return v * 1000 end
    end
    return 0
  end
  return {
    ttft_ms = ms("ttft_ms", { "ttft", "ttft_s" }),
    tokens_per_s = number_or_nil(spec.tokens_per_s) or number_or_nil(spec.tps)
      or number_or_nil(spec.tokens_per_second) or 0,
    jitter = number_or_nil(spec.jitter) or 0,
    prefill_ms_per_1k = ms("prefill_ms_per_1k", { "prefill_per_1k" }),
  }
end

-- name -> profile from a table that maps names to specs, holds them
-- under `profiles`, or lists them with a `name` (or `model`) field.
function M.normalize_profiles(t)
  local out = {}
  if type(t) ~= "table" then return out end
  if type(t.profiles) == "table" then t = t.profiles end
  for k, spec in pairs(t) do
    if type(spec) == "table" then
      local name = type(k) == "string" and k or spec.name or spec.model
      if type(name) == "string" then out[name] = profile_of(spec) end
    end
  end
  return out
end

-- Embedding calls are one forward pass: when llm.sim_profiles has no
-- profile for them they would get its chat "default" (0.6 s). This one
-- is a rough guess, not a measurement; a profile from the table wins.
local embedding_fallback = { ["text-embedding-"] = { ttft_ms = 250, tokens_per_s = 0, jitter = 0.3 } }

local default_profiles_cache
local function default_profiles()
  if default_profiles_cache == nil then
    local ok, t = pcall(require, "llm.sim_profiles")
    local p = ok and M.normalize_profiles(t) or {}
    for name, spec in pairs(embedding_fallback) do
      if p[name] == nil then p[name] = spec end
    end
    default_profiles_cache = p
  end
  return default_profiles_cache
end

-- ---- environment (for `llmrun serve --sim` and any in-process server) ----------

local function env_number(name)
  local v = os.getenv(name)
  if v == nil or v == "" then return nil end
  local n = tonumber(v)
  if not n or n < 0 then
    error(("%s must be a number >= 0, got '%s'"):format(name, v), 0)
  end
  return n
end

-- "429=0.05,drop_mid_stream=0.01" -> { ["429"] = 0.05, drop_mid_stream = 0.01 }
function M.parse_fault_rates(s, what)
  local faults = {}
  for item in s:gmatch("[^,%s]+") do
    local name, rate = item:match("^([%w_]+)=([%d.eE+-]+)$")
    rate = tonumber(rate)
    if not name or not rate or rate < 0 or rate > 1 then
      error(("%s: expected NAME=RATE[,NAME=RATE...] with rates from 0 to 1, got '%s'")
        :format(what or "fault rates", item), 0)
    end
    faults[name] = rate
  end
  return faults
end

function M.from_env()
  local cfg = {}
  local p = os.getenv("LLMRUN_SIM_PROFILE")
  if p and p ~= "" then cfg.profile = p end
  cfg.ttft_ms = env_number("LLMRUN_SIM_TTFT_MS")
  cfg.tokens_per_s = env_number("LLMRUN_SIM_TOKENS_PER_S")
  cfg.jitter = env_number("LLMRUN_SIM_JITTER")
  local seed = env_number("LLMRUN_SIM_SEED")
  cfg.seed = seed and math.tointeger(seed)
  local f = os.getenv("LLMRUN_SIM_FAULTS")
  if f and f ~= "" then cfg.faults = M.parse_fault_rates(f, "LLMRUN_SIM_FAULTS") end
  local strict = os.getenv("LLMRUN_SIM_STRICT")
  if strict and strict ~= "" and strict ~= "0" then cfg.strict = true end
  local rpm, tpm = env_number("LLMRUN_SIM_RPM"), env_number("LLMRUN_SIM_TPM")
  if rpm or tpm then cfg.rate_limit = { rpm = rpm, tpm = tpm } end
  cfg.batch_turnaround_s = env_number("LLMRUN_SIM_BATCH_TURNAROUND_S")
  return cfg
end

-- ---- merging -----------------------------------------------------------------------

-- Keys whose tables merge entry by entry; `false` clears them.
local merged = { profiles = true, faults = true, rate_limit = true }

local function merge(into, from)
  for k, v in pairs(from) do
    if merged[k] then
      if v == false then
        into[k] = nil
      else
        into[k] = into[k] or {}
        for name, x in pairs(v) do into[k][name] = x end
      end
    else
      into[k] = v
    end
  end
  return into
end

-- The whole configuration for the C side.
local function effective()
  local cfg = { profiles = {} }
  for name, p in pairs(default_profiles()) do cfg.profiles[name] = p end
  merge(cfg, M.from_env())
  local mine = {}
  for k, v in pairs(user) do mine[k] = v end
  if mine.profiles then mine.profiles = M.normalize_profiles(mine.profiles) end
  merge(cfg, mine)
  for name, rate in pairs(cfg.faults or {}) do
    if rate == 0 then cfg.faults[name] = nil end
  end
  return cfg
end

-- The configuration a server started now would get (a copy).
function M.config()
  return effective()
end

-- ---- the shared server ------------------------------------------------------------

local server_opts = { host = true, port = true, allow_remote = true, idle_timeout_s = true }

local function base_url()
  return server:url() .. "/v1"
end

-- Starts the shared server. opts: host, port, allow_remote, idle_timeout_s,
-- plus any configuration key. Returns the base URL, or nil, err.
function M.start(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #1 to 'llm.sim.start' (table expected, got " .. type(opts) .. ")", 2)
  end
  if server then
    error("llm.sim.start: the simulator is already running at " .. base_url()
      .. " (llm.sim.stop() it first, or use llm.sim.ensure())", 2)
  end
  local listen, cfg = {}, {}
  for k, v in pairs(opts or {}) do
    if server_opts[k] then listen[k] = v else cfg[k] = v end
  end
  if next(cfg) then merge(user, cfg) end
  local s, err = C.start(listen, effective())
  if not s then return nil, err end
  server = s
  for _, t in ipairs(tasks) do server:add_task(t) end
  return base_url()
end

-- The base URL of the shared server, starting it on first use.
function M.ensure()
  if server then return base_url() end
  return M.start()
end

function M.url()
  return server and base_url() or nil
end

function M.running()
  return server ~= nil
end

-- Merges cfg into the configuration and applies it at once when running.
function M.configure(cfg)
  if type(cfg) ~= "table" then
    error("bad argument #1 to 'llm.sim.configure' (table expected, got " .. type(cfg) .. ")", 2)
  end
  local saved = {}
  for k, v in pairs(user) do
    if merged[k] and type(v) == "table" then
      local t = {}
      for name, x in pairs(v) do t[name] = x end
      v = t
    end
    saved[k] = v
  end
  merge(user, cfg)
  if server then
    local ok, err = pcall(server.configure, server, effective())
    if not ok then
      user = saved
      error(err, 2)
    end
  end
end

-- Counters of the running server (the JSON of GET /sim/stats as a table).
function M.stats()
  if not server then return nil, "the simulator is not running" end
  return server:stats()
end

-- Clears the counters, the prefix cache and the rate-limit windows.
function M.reset()
  if server then server:reset() end
end

function M.stop()
  if server then
    server:close()
    server = nil
  end
end

-- ---- labelled tasks ----------------------------------------------------------------

--- llm.sim.task{cases =, answer =, input =, options =, instructions =,
-- difficulty =, name =} registers labelled cases with the simulator (the
-- shared server, now or when it starts): llm.sim_task says how, README
-- "The simulator's model" what the simulator then does. A task of the
-- same name is replaced. Returns {name =, cases =, kind =, options =}.
function M.task(spec)
  local ok, c_spec, info = pcall(require("llm.sim_task").build, spec)
  if not ok then error(c_spec, 2) end
  for i, t in ipairs(tasks) do
    if t.name == c_spec.name then table.remove(tasks, i) break end
  end
  if server then
    local added, err = pcall(server.add_task, server, c_spec)
    if not added then error(err, 2) end
  end
  tasks[#tasks + 1] = c_spec
  return info
end

--- Forgets the task of that name (every task without one). How many.
function M.remove_tasks(name)
  local n = 0
  for i = #tasks, 1, -1 do
    if name == nil or tasks[i].name == name then
      table.remove(tasks, i)
      n = n + 1
    end
  end
  if server then server:remove_tasks(name) end
  return n
end

--- The registered tasks: {{name =, cases =}, ...} in registration order.
function M.tasks()
  local out = {}
  for i, t in ipairs(tasks) do out[i] = { name = t.name, cases = #t.cases } end
  return out
end

-- ---- scripted answers ------------------------------------------------------------

--- llm.sim.responder(fn) -> the previous responder: fn(req) scripts the
-- answers of simulated chat and stream calls (llm.sim_responder says how);
-- llm.sim.responder(nil) removes it, llm.sim.responder() returns it.
function M.responder(...)
  local prev = require("llm.sim_responder").responder(...) -- not a tail call: error levels
  return prev
end

-- A private server, not the shared one: llm.sim.new(opts, cfg) -> server
-- userdata with :url() :configure(cfg) :stats() :reset() :close().
function M.new(opts, cfg)
  return C.start(opts, cfg)
end

return M
