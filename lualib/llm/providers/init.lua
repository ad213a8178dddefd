-- Provider registry: a provider turns a model spec into connection
-- settings and speaks one wire format. Names: openai (any OpenAI-
-- compatible endpoint), anthropic (the native Messages API), sim (the
-- built-in simulator), ollama (a local Ollama through its OpenAI-
-- compatible /v1).
local M = {}

local env = require("llm.providers.common").env

local openai = require "llm.providers.openai"
local anthropic = require "llm.providers.anthropic"

-- Each entry: format (the wire module) and configure(spec) -> cfg.
local registry = {
  openai = { format = openai, configure = openai.configure },
  anthropic = { format = anthropic, configure = anthropic.configure },
  sim = {
    format = openai,
    simulated = true,
    configure = function(spec)
      local base = spec.base_url or require("llm.sim").ensure()
      return { base_url = (base:gsub("/+$", "")), api_key = nil }
    end,
  },
  ollama = {
    format = openai,
    configure = function(spec)
      local host = env("OLLAMA_HOST") or "http://127.0.0.1:11434"
      if not host:match("^https?://") then host = "http://" .. host end
      -- Ollama needs no key; its OpenAI layer ignores the one it gets.
      return { base_url = (spec.base_url or (host:gsub("/+$", "") .. "/v1")), api_key = spec.api_key }
    end,
  },
}

function M.get(name)
  return registry[name]
end

function M.names()
  local out = {}
  for k in pairs(registry) do out[#out + 1] = k end
  table.sort(out)
  return out
end

--- Adds or replaces a provider: {format = wire module, configure = fn}.
function M.register(name, provider)
  if type(name) ~= "string" or type(provider) ~= "table" or type(provider.configure) ~= "function"
     or type(provider.format) ~= "table" then
    error("llm.providers.register(name, {format=, configure=}) expected", 2)
  end
  registry[name] = provider
end

local told_sim = false

--- The provider for a model with no provider named: a real API when its
-- key (or an explicit base URL) is set, else the simulator, said once.
-- Claude models go to Anthropic when ANTHROPIC_API_KEY is set.
function M.default_for(model_name)
  if model_name:match("^claude") and env("ANTHROPIC_API_KEY") then return "anthropic" end
  if env("OPENAI_API_KEY") or env("OPENAI_BASE_URL") then return "openai" end
  if not told_sim then
    told_sim = true
    io.stderr:write("llmrun: no OPENAI_API_KEY set: using the built-in simulator (provider \"sim\"). ",
      "Set a key or name a provider, e.g. llm.model \"openai/", model_name, "\", to call a real API.\n")
  end
  return "sim"
end

return M
