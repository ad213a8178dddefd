-- Latency profiles of the built-in simulator, per model name: plain data
-- that the simulator's binding reads (and users may override).
--
-- Shape: M.profiles[name] = {
--   ttft = seconds to the first token for a short prompt (~1k tokens),
--   tps = output tokens per second after the first (0 = no delay),
--   jitter = relative spread of both delays (0.25: typically within +-25%;
--            suggested use: multiply by exp(jitter * N(0,1) - jitter^2 / 2),
--            a log-normal with the same mean, as real latencies are skewed),
--   prefill_per_1k = extra seconds of ttft per 1,000 prompt tokens beyond
--            the first 1,000 (optional, default 0), so shorter prompts answer
--            sooner, as they do in life,
--   source = where the numbers come from, or "rough guess",
-- }
-- M.lookup(model) returns the profile for a model name: the name is
-- lower-cased, a provider prefix ("openai/", "sim/") is dropped, then the
-- exact key, else the longest key that is a prefix of the name
-- ("gpt-4o-2024-08-06" -> "gpt-4o", "gpt-4o-mini-2024-07-18" ->
-- "gpt-4o-mini"), else `default`. `zero` is for benchmarks: no delay at all.
--
-- Numbers are medians from public measurements of the real APIs as cited
-- (Artificial Analysis, "AA", measures the provider's own API; its TTFT of a
-- reasoning model includes the time spent thinking), rounded; where no
-- source was found the value says "rough guess".
--
-- Reasoning models (o1, o3, o4-mini, gpt-5 / -mini / -nano): the simulator
-- adds the time of their hidden reasoning tokens (src/sim/sim_reasoning.c: 1,536
-- at the default medium effort) at the model's tokens per second before the
-- first visible token, so their ttft here is the rest: a measured TTFT
-- minus that reasoning time (floored at 0.5 s), or a rough guess. Real latency varies by
-- day, region, prompt and load: these make simulated runs look plausible,
-- they are not a benchmark.
local M = {}

local AA = "https://artificialanalysis.ai/models/"

M.profiles = {
  zero = { ttft = 0, tps = 0, jitter = 0, prefill_per_1k = 0, source = "no delay (benchmarks)" },
  default = { ttft = 0.6, tps = 80, jitter = 0.25, prefill_per_1k = 0.05,
    source = "rough guess: a typical hosted non-reasoning model" },

  -- OpenAI
  ["gpt-4o"] = { ttft = 0.45, tps = 110, jitter = 0.25, prefill_per_1k = 0.04,
    source = AA .. "gpt-4o-2024-05-13/providers (OpenAI 81 t/s, 0.39 s); AA medians of 2026-06 " ..
      "quoted at https://induwara.lk/tools/ai-llm-speed-comparison (131 t/s, 0.45 s)" },
  ["chatgpt-4o"] = { ttft = 0.45, tps = 110, jitter = 0.25, prefill_per_1k = 0.04, source = "as gpt-4o" },
  ["gpt-4o-mini"] = { ttft = 0.45, tps = 85, jitter = 0.3, prefill_per_1k = 0.03,
    source = "rough: https://tokenwisehq.com/free-tools/model-speed (140 t/s, 0.4 s) and " ..
      "https://community.openai.com/t/inference-speed-of-different-models/1307310 (59 t/s)" },
  ["gpt-4.1"] = { ttft = 0.55, tps = 90, jitter = 0.25, prefill_per_1k = 0.03,
    source = "rough: https://tokenwisehq.com/free-tools/model-speed (100 t/s, 0.6 s) and " ..
      "https://community.openai.com/t/inference-speed-of-different-models/1307310 (68 t/s)" },
  ["gpt-4.1-mini"] = { ttft = 0.6, tps = 77, jitter = 0.3, prefill_per_1k = 0.03,
    source = AA .. "gpt-4-1-mini/providers (OpenAI 77.2 t/s, 0.93 s at 10k input tokens)" },
  ["gpt-4.1-nano"] = { ttft = 0.6, tps = 180, jitter = 0.3, prefill_per_1k = 0.02,
    source = "AA medians of 2026-04 quoted at https://benchlm.ai/llm-speed (181 t/s, 0.63 s)" },
  ["gpt-4"] = { ttft = 0.7, tps = 30, jitter = 0.3, prefill_per_1k = 0.06, source = "rough guess" },
  ["gpt-3.5-turbo"] = { ttft = 0.35, tps = 80, jitter = 0.25, prefill_per_1k = 0.02,
    source = "https://ithy.com/article/0b87143c7df04c63b81dcca71b49787e (0.29 s, 73-80 t/s)" },
  ["o1"] = { ttft = 9, tps = 100, jitter = 0.4, prefill_per_1k = 0.05,
    source = "rough guess (25 s with medium reasoning, minus its 15 s)" },
  ["o1-mini"] = { ttft = 0.8, tps = 150, jitter = 0.4, prefill_per_1k = 0.03,
    source = "rough guess (8 s with medium reasoning, minus its 10 s; floored)" },
  ["o3"] = { ttft = 8.8, tps = 108, jitter = 0.4, prefill_per_1k = 0.05,
    source = AA .. "o3/providers (OpenAI 108.1 t/s, 22.99 s with medium reasoning, minus its 14.2 s)" },
  ["o3-mini"] = { ttft = 0.8, tps = 150, jitter = 0.4, prefill_per_1k = 0.03,
    source = AA .. "o3-mini/providers (OpenAI 132.1 t/s, 18.55 s); https://benchlm.ai/llm-speed (160 t/s, 7.1 s); " ..
      "about 11 s with medium reasoning (its 10.2 s at 150 t/s)" },
  ["o4-mini"] = { ttft = 1, tps = 165, jitter = 0.4, prefill_per_1k = 0.03,
    source = "https://benchlm.ai/llm-speed (o4-mini high: 161 t/s, 21.9 s); high reasoning (4,096) " ..
      "takes 24.8 s at 165 t/s: the rest is a rough guess" },
  ["gpt-5"] = { ttft = 0.5, tps = 80, jitter = 0.4, prefill_per_1k = 0.04,
    source = AA .. "gpt-5-minimal/providers (OpenAI 80 t/s, 0.89 s with minimal reasoning, " ..
      "minus its 0.4 s)" },
  ["gpt-5-chat"] = { ttft = 0.9, tps = 80, jitter = 0.3, prefill_per_1k = 0.04,
    source = AA .. "gpt-5-minimal/providers (80 t/s, 0.89 s)" },
  ["gpt-5-mini"] = { ttft = 0.5, tps = 120, jitter = 0.4, prefill_per_1k = 0.03,
    source = "rough guess (as gpt-5, before reasoning)" },
  ["gpt-5-nano"] = { ttft = 0.5, tps = 150, jitter = 0.4, prefill_per_1k = 0.02,
    source = "rough guess (as gpt-5, before reasoning)" },
  ["gpt-5."] = { ttft = 0.9, tps = 60, jitter = 0.35, prefill_per_1k = 0.04,
    source = "https://www.jonathanwrede.de/en/blog/ttft-varies-13x-across-llm-providers/ " ..
      "(gpt-5.4 0.91 s, gpt-5.5 1.16 s); https://www.godofprompt.ai/blog/llm-latency-benchmarks-use-case " ..
      "(gpt-5.2 0.5-0.6 s, 10-20 ms a token)" },
  ["gpt-5.4-mini"] = { ttft = 3.9, tps = 200, jitter = 0.35, prefill_per_1k = 0.02,
    source = "https://benchlm.ai/llm-speed (201 t/s, 3.86 s)" },
  ["gpt-5.4-nano"] = { ttft = 3.6, tps = 190, jitter = 0.35, prefill_per_1k = 0.02,
    source = "https://benchlm.ai/llm-speed (191 t/s, 3.65 s)" },
  ["gpt-oss-120b"] = { ttft = 0.8, tps = 260, jitter = 0.3, prefill_per_1k = 0.02,
    source = "https://benchlm.ai/llm-speed (262 t/s, 0.79 s)" },
  ["gpt-oss-20b"] = { ttft = 0.65, tps = 310, jitter = 0.3, prefill_per_1k = 0.02,
    source = "https://benchlm.ai/llm-speed (313 t/s, 0.65 s)" },

  -- Anthropic
  ["claude-3-haiku"] = { ttft = 0.5, tps = 110, jitter = 0.25, prefill_per_1k = 0.03, source = "rough guess" },
  ["claude-3-5-haiku"] = { ttft = 0.8, tps = 65, jitter = 0.25, prefill_per_1k = 0.04,
    source = AA .. "claude-3-5-haiku/providers (Anthropic 68 t/s; TTFT 0.6-1.0 s across providers)" },
  ["claude-3-5-sonnet"] = { ttft = 0.8, tps = 70, jitter = 0.25, prefill_per_1k = 0.05,
    source = AA .. "claude-35-sonnet/providers (Anthropic 64-95 t/s, 0.80 s)" },
  ["claude-3-7-sonnet"] = { ttft = 1.0, tps = 70, jitter = 0.3, prefill_per_1k = 0.05,
    source = "rough guess (like claude-3-5-sonnet)" },
  ["claude-3-opus"] = { ttft = 1.5, tps = 25, jitter = 0.3, prefill_per_1k = 0.08, source = "rough guess" },
  ["claude-sonnet-4"] = { ttft = 1.3, tps = 60, jitter = 0.3, prefill_per_1k = 0.05,
    source = "https://shadabchow.com/blogs/ai-models/claude-4-sonnet-non-reasoning (AA: 59.3 t/s); ttft rough" },
  ["claude-4-sonnet"] = { ttft = 1.3, tps = 60, jitter = 0.3, prefill_per_1k = 0.05, source = "as claude-sonnet-4" },
  ["claude-sonnet-4-5"] = { ttft = 1.8, tps = 63, jitter = 0.3, prefill_per_1k = 0.05,
    source = "https://lattice.uptownhr.com/claude-opus-4-5/speed-analysis (AA: 63 t/s, 1.80 s)" },
  ["claude-sonnet-4-6"] = { ttft = 0.75, tps = 104, jitter = 0.3, prefill_per_1k = 0.05,
    source = "AA medians of 2026-06 quoted at https://induwara.lk/tools/ai-llm-speed-comparison (104 t/s, 0.74 s)" },
  ["claude-opus-4"] = { ttft = 2.7, tps = 45, jitter = 0.3, prefill_per_1k = 0.08,
    source = "https://lattice.uptownhr.com/claude-opus-4-5/speed-analysis (AA, Opus 4.1: 45 t/s, 2.67 s)" },
  ["claude-4-opus"] = { ttft = 2.7, tps = 45, jitter = 0.3, prefill_per_1k = 0.08, source = "as claude-opus-4" },
  ["claude-opus-4-5"] = { ttft = 2.5, tps = 50, jitter = 0.3, prefill_per_1k = 0.08,
    source = "rough: estimate at https://lattice.uptownhr.com/claude-opus-4-5/speed-analysis" },
  ["claude-opus-4-6"] = { ttft = 1.7, tps = 70, jitter = 0.3, prefill_per_1k = 0.08,
    source = "https://www.jonathanwrede.de/en/blog/ttft-varies-13x-across-llm-providers/ (1.71 s, 70 t/s)" },
  ["claude-opus-4-7"] = { ttft = 2.5, tps = 95, jitter = 0.3, prefill_per_1k = 0.08,
    source = "https://www.jonathanwrede.de/en/blog/ttft-varies-13x-across-llm-providers/ (2.49 s, 95 t/s)" },
  ["claude-haiku-4-5"] = { ttft = 0.6, tps = 110, jitter = 0.3, prefill_per_1k = 0.03,
    source = "https://www.kunalganglani.com/blog/llm-api-latency-benchmarks-2026 (0.60 s); " ..
      "https://lmspeed.net/compare/model/claude-haiku-4-5-vs-claude-sonnet-4 (112 t/s)" },
  ["claude-"] = { ttft = 1.5, tps = 60, jitter = 0.3, prefill_per_1k = 0.06,
    source = "rough guess for Claude models not listed" },

  -- Google, open and other models
  ["gemini-2.0-flash"] = { ttft = 0.4, tps = 200, jitter = 0.25, prefill_per_1k = 0.02,
    source = "https://www.jonathanwrede.de/en/blog/ttft-varies-13x-across-llm-providers/ (0.41 s, 203 t/s)" },
  ["gemini-2.5-flash"] = { ttft = 0.5, tps = 220, jitter = 0.25, prefill_per_1k = 0.02,
    source = "https://benchlm.ai/llm-speed (221 t/s, 0.54 s)" },
  ["gemini-2.5-pro"] = { ttft = 15, tps = 150, jitter = 0.4, prefill_per_1k = 0.04,
    source = "rough guess (thinks before answering; https://benchlm.ai/llm-speed: Google average ttft 13.5 s)" },
  ["deepseek-chat"] = { ttft = 1.7, tps = 25, jitter = 0.4, prefill_per_1k = 0.06,
    source = "https://www.jonathanwrede.de/en/blog/ttft-varies-13x-across-llm-providers/ (v3.2: 1.73 s, 24.7 t/s)" },
  ["deepseek-reasoner"] = { ttft = 20, tps = 30, jitter = 0.5, prefill_per_1k = 0.06, source = "rough guess" },
  ["llama-3.3-70b"] = { ttft = 0.5, tps = 100, jitter = 0.3, prefill_per_1k = 0.03,
    source = "rough guess for a typical host (Groq serves ~280 t/s: https://tokenwisehq.com/free-tools/model-speed)" },
  ["llama-3.1-8b"] = { ttft = 0.3, tps = 200, jitter = 0.3, prefill_per_1k = 0.01,
    source = "rough guess for a typical host (Groq serves ~750 t/s: https://tokenwisehq.com/free-tools/model-speed)" },
  ["mistral-large"] = { ttft = 0.4, tps = 40, jitter = 0.3, prefill_per_1k = 0.04,
    source = "https://www.godofprompt.ai/blog/llm-latency-benchmarks-use-case (0.30-0.45 s, 20-40 ms a token)" },
}

function M.lookup(model)
  local name = tostring(model or ""):lower():gsub("^.*/", "")
  local p = M.profiles[name]
  if p then return p, name end
  local best
  for key in pairs(M.profiles) do
    if #key > 0 and name:sub(1, #key) == key and (not best or #key > #best) then best = key end
  end
  if best then return M.profiles[best], best end
  return M.profiles.default, "default"
end

return M
