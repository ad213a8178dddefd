-- Where the gateway sends a model's requests: an llm.model per model name
-- (and per client key, when clients' keys pass through), built exactly as
-- a script's llm.model "name" would be (OPENAI_BASE_URL / OPENAI_API_KEY,
-- ANTHROPIC_*, the simulator when no key is set), unless the config says
-- otherwise:
--
--   models = {                       -- per model name the clients send
--     ["gpt-4o-mini"] = "openai/gpt-4o-mini",          -- "provider/name"
--     ["fast"] = { provider = "openai", name = "gpt-4o-mini",
--                  base_url = "http://127.0.0.1:8000/v1", api_key_env = "MY_KEY",
--                  max_retries = 2, timeout = 60, headers = { ... } },
--     ["*"] = { base_url = "..." },  -- any other name: these settings
--   },
--   routes = { ["smart"] = { "gpt-4o", "claude-sonnet-4-5" } },  -- llm.route.fallback
--
-- A client key (passthrough mode) becomes the model's api_key; it is kept
-- only in this process's memory, never logged and never part of a cache
-- key (llm.cache keys hold no credentials).
local M = {}

local U = {}
U.__index = U

local MAX_MEMO = 4096

local function copy(t)
  local c = {}
  for k, v in pairs(t or {}) do c[k] = v end
  return c
end

function M.new(opts)
  local cfg = opts.config or {}
  return setmetatable({ cfg = cfg, cache = opts.cache, passthrough = opts.passthrough,
                        memo = {}, nmemo = 0 }, U)
end

-- The llm.model spec for a name the client sent.
function U:spec_for(name)
  local models = self.cfg.models or {}
  local entry = models[name]
  local spec
  if type(entry) == "string" then
    spec = { name = entry }
  elseif type(entry) == "table" then
    spec = copy(entry)
    spec.name = spec.name or name
  else
    spec = copy(type(models["*"]) == "table" and models["*"] or nil)
    spec.name = name
  end
  if spec.api_key_env then
    spec.api_key = os.getenv(spec.api_key_env)
    spec.api_key_env = nil
  end
  return spec
end

function U:build(name, key)
  local route = self.cfg.routes and self.cfg.routes[name]
  if route then
    local list = {}
    for i, n in ipairs(route) do list[i] = self:model(n, key) end
    return llm.route.fallback(list)
  end
  local spec = self:spec_for(name)
  if key and self.passthrough and not spec.api_key then spec.api_key = key end
  if self.cache then spec.cache = self.cache end
  return llm.model(spec)
end

--- The model (or route) for a name, with the client's key where keys pass through.
-- memo: key (false: none) -> name -> model; two lookups rather than a
-- string made of both per request.
function U:model(name, key)
  if not self.passthrough or key == nil then key = false end
  local by_name = self.memo[key]
  local m = by_name and by_name[name]
  if m then return m end
  m = self:build(name, key or nil)
  if self.nmemo >= MAX_MEMO then self.memo, self.nmemo = {}, 0 end
  by_name = self.memo[key]
  if not by_name then
    by_name = {}
    self.memo[key] = by_name
  end
  by_name[name] = m
  self.nmemo = self.nmemo + 1
  return m
end

--- The names GET /v1/models lists: the configured ones, or else the
-- models the simulator knows (what an unconfigured gateway can answer).
function U:model_names()
  local names = {}
  for n in pairs(self.cfg.models or {}) do if n ~= "*" then names[#names + 1] = n end end
  for n in pairs(self.cfg.routes or {}) do names[#names + 1] = n end
  if #names == 0 then
    for n in pairs(require("llm.sim_profiles").profiles) do
      if n ~= "zero" and n ~= "default" and n:match("^[%w][%w.:_-]*[%w]$") then names[#names + 1] = n end
    end
  end
  table.sort(names)
  return names
end

return M
