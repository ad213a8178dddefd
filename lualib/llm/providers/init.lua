-- Provider registry: a provider turns a model spec into connection
-- settings and speaks one wire format. Names: openai (any OpenAI-
-- compatible endpoint), anthropic (the native Messages API), sim (the
-- built-in simulator), ollama (a local Ollama through its OpenAI-
-- compatible /v1).
--
-- The simulator speaks both APIs: a Claude model name ("claude-...")
-- goes through the anthropic wire format to its POST /v1/messages, every
-- other name through the openai one to /v1/chat/completions, so a
-- simulated Claude call runs the same client code as a real one.
-- provider.format_for(name), when a provider has it, picks the format.
local M = {}

local env = require("llm.providers.common").env

local openai = require "llm.providers.openai"
local anthropic = require "llm.providers.anthropic"

-- Each entry: format (the wire module) and configure(spec) -> cfg.
local function is_claude(name)
  return type(name) == "string" and name:lower():gsub("^.*/", ""):match("^claude") ~= nil
end
M.is_claude = is_claude

local registry = {
  openai = { format = openai, configure = openai.configure },
  anthropic = { format = anthropic, configure = anthropic.configure },
  sim = {
    format = openai,
    simulated = true,
    format_for = function(name) return is_claude(name) and anthropic or openai end,
    -- name: the model's name without its provider prefix
    configure = function(spec, name)
      local base = (spec.base_url or require("llm.sim").ensure()):gsub("/+$", "")
      -- the anthropic format adds /v1/messages itself
      if is_claude(name or spec.name or spec[1]) then base = base:gsub("/v1$", "") end
      return { base_url = base, api_key = nil }
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
    local claude = is_claude(model_name)
    io.stderr:write("llmrun: no ", claude and "ANTHROPIC_API_KEY" or "OPENAI_API_KEY",
      " set: using the built-in simulator (provider \"sim\"). Set a key or name a provider, e.g. ",
      "llm.model \"", claude and "anthropic/" or "openai/", model_name, "\", to call a real API.\n")
  end
  return "sim"
end

return M
