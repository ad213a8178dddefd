-- Which request parameters each provider and model family accepts, as
-- data (the price table's neighbour: pricing_data.lua says what a model
-- costs, this file what it takes). llm.params applies these rules to
-- every request before it is sent (and before its cache key is made),
-- so a script written for one model runs on another.
--
-- A rule, per parameter:
--   "copy"                       sent as it is (Anthropic: to the same name)
--   "ignore"                     accepted and not sent (it has no meaning there)
--   {to = name, map = fn_name}   Anthropic: sent as `name`, the value mapped by
--                                llm.providers.anthropic_request's function
--   {rename = name}              sent under another name (same dialect)
--   {default = v}                only the API default v is accepted: a request
--                                with v is sent without it, any other value
--                                is unsupported
--   {unsupported = true, action = "drop" | "error"}
--                                the model rejects it
--   unless_effort_none = true    (with the above) accepted when
--                                reasoning_effort is absent or "none"
-- Unsupported values follow ONE policy (README "Reasoning models and
-- unsupported parameters"): the model option drop_params = true drops
-- them all, drop_params = false raises on all; left unset, each rule's
-- action decides: "drop" removes the parameter with one warning per
-- model and parameter, "error" raises (misuse). A parameter a provider
-- table marks strict and does not list at all raises as unknown.
--
-- Sources (read 2026-11 through the search tool):
--   * OpenAI reasoning guide, "limitations" (quoted by the Vercel AI SDK,
--     packages/openai/src/chat/openai-chat-language-model.ts): reasoning
--     models take max_completion_tokens, not max_tokens; temperature,
--     top_p, presence/frequency_penalty, logprobs, top_logprobs and
--     logit_bias are not supported. The API's own error for max_tokens
--     (recorded: tests/fixtures/providers/oai-error-max-tokens):
--     "Unsupported parameter: 'max_tokens' is not supported with this
--     model. Use 'max_completion_tokens' instead."
--   * LiteLLM litellm/llms/openai/chat/o_series_transformation.py: o-series
--     reject logprobs, top_p, presence_penalty, frequency_penalty,
--     top_logprobs; temperature only 1.
--   * LiteLLM litellm/llms/openai/chat/gpt_5_transformation.py: gpt-5
--     rejects presence_penalty, frequency_penalty, stop, logit_bias,
--     logprobs, top_p, top_logprobs; temperature only 1; gpt-5-chat* is an
--     ordinary chat model; gpt-5.1 and later accept temperature, top_p,
--     logprobs, top_logprobs when reasoning_effort is "none" (their
--     default). Same split in the Vercel AI SDK,
--     packages/openai/src/openai-language-model-capabilities.ts.
--   * Anthropic Messages API reference: max_tokens (required), stop_sequences,
--     temperature, top_p, top_k, tools, tool_choice {auto, any, tool, none,
--     disable_parallel_tool_use}, thinking {type = "enabled",
--     budget_tokens >= 1024}, metadata.user_id, service_tier; no n,
--     logprobs, penalties, seed or logit_bias.
--   * reasoning_effort -> thinking budget: LiteLLM's defaults
--     (litellm/constants.py DEFAULT_REASONING_EFFORT_{LOW,MEDIUM,HIGH}_
--     THINKING_BUDGET = 1024, 2048, 4096); "minimal" is raised to
--     Anthropic's minimum budget, 1024.
local M = {}

local function unsupported(action, extra)
  local r = { unsupported = true, action = action }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

-- OpenAI-wire providers (openai, sim, ollama...): families matched on the
-- model name without provider prefixes ("openai/o3" -> "o3"); the first
-- family whose pattern matches applies. Other models: no rules.
M.openai = {
  {
    family = "gpt-5-chat", -- an ordinary chat model despite its name
    match = { "^gpt%-5%-chat" },
    params = {},
  },
  {
    family = "gpt-5.1 and later",
    match = { "^gpt%-5%.%d", "^gpt%-[6-9]" },
    reasoning = true,
    params = {
      max_tokens = { rename = "max_completion_tokens" },
      temperature = { default = 1, action = "drop", unless_effort_none = true },
      top_p = unsupported("drop", { unless_effort_none = true }),
      logprobs = unsupported("error", { unless_effort_none = true }),
      top_logprobs = unsupported("error", { unless_effort_none = true }),
      presence_penalty = unsupported("drop"),
      frequency_penalty = unsupported("drop"),
      logit_bias = unsupported("drop"),
      stop = unsupported("error"),
    },
  },
  {
    family = "gpt-5",
    match = { "^gpt%-5" },
    reasoning = true,
    params = {
      max_tokens = { rename = "max_completion_tokens" },
      temperature = { default = 1, action = "drop" },
      top_p = unsupported("drop"),
      logprobs = unsupported("error"),
      top_logprobs = unsupported("error"),
      presence_penalty = unsupported("drop"),
      frequency_penalty = unsupported("drop"),
      logit_bias = unsupported("drop"),
      stop = unsupported("error"),
    },
  },
  {
    family = "o-series",
    match = { "^o%d+$", "^o%d+%-" },
    reasoning = true,
    params = {
      max_tokens = { rename = "max_completion_tokens" },
      temperature = { default = 1, action = "drop" },
      top_p = unsupported("drop"),
      presence_penalty = unsupported("drop"),
      frequency_penalty = unsupported("drop"),
      logit_bias = unsupported("drop"),
      logprobs = unsupported("error"),
      top_logprobs = unsupported("error"),
    },
  },
}

-- The request fields of OpenAI's chat completions API (its API reference,
-- "Create chat completion", read 2026-11), besides `model`, which llmrun
-- sets: a name outside this set is unknown, warned about once and sent
-- (llm.params.check_fields). fields_by_provider adds what a provider of the
-- same wire takes besides: the simulator's knob object `sim` and scripted
-- answers `mock_response`.
M.openai_fields = {
  "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "stream",
  "stream_options", "stop", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs",
  "top_logprobs", "user", "seed", "tools", "tool_choice", "parallel_tool_calls",
  "response_format", "reasoning_effort", "modalities", "audio", "prediction",
  "web_search_options", "store", "metadata", "service_tier", "verbosity", "functions",
  "function_call", "prompt_cache_key", "safety_identifier", "prompt_cache_retention",
}
M.fields_by_provider = { sim = { "sim", "mock_response" } }

-- Anthropic's Messages API, for every Claude model. strict: a parameter
-- not listed is unknown there and raises.
M.anthropic = {
  family = "Messages API",
  strict = true,
  params = {
    messages = "copy", -- mapped message by message (anthropic_request.lua)
    max_tokens = "copy",
    max_completion_tokens = { to = "max_tokens" },
    temperature = "copy",
    top_p = "copy",
    stop = { to = "stop_sequences", map = "string_list" },
    user = { to = "metadata", map = "user_id" },
    tools = { map = "tools" },
    tool_choice = { map = "tool_choice" },
    parallel_tool_calls = { map = "parallel_tool_calls" },
    response_format = { map = "response_format" },
    reasoning_effort = { map = "reasoning_effort" },
    stream_options = "ignore", -- Anthropic streams always carry usage
    n = { default = 1, action = "error" },
    -- the Messages API's own names, passed through
    top_k = "copy", thinking = "copy", metadata = "copy", stop_sequences = "copy",
    service_tier = "copy", container = "copy", mcp_servers = "copy",
    context_management = "copy",
    -- OpenAI parameters with no Anthropic counterpart
    logprobs = unsupported("error"),
    top_logprobs = unsupported("error"),
    presence_penalty = unsupported("error"),
    frequency_penalty = unsupported("error"),
    seed = unsupported("error"),
    logit_bias = unsupported("error"),
    modalities = unsupported("error"),
    audio = unsupported("error"),
    prediction = unsupported("error"),
    web_search_options = unsupported("error"),
    store = unsupported("error"),
    verbosity = unsupported("error"),
    functions = unsupported("error"),
    function_call = unsupported("error"),
  },
  -- fields of a message other than role, content, tool_calls, tool_call_id
  message_fields = {
    name = unsupported("drop"), -- the Messages API has no per-message names
  },
  -- reasoning_effort -> thinking.budget_tokens ("none": no thinking)
  thinking_budgets = { minimal = 1024, low = 1024, medium = 2048, high = 4096 },
}

return M
