-- lualib/llm/sim_profiles.lua: the documented shape and the lookup rule.
local T = ...
local P = require "llm.sim_profiles"

T.test("every profile has the documented fields", function()
  local n = 0
  for name, p in pairs(P.profiles) do
    n = n + 1
    T.ok(type(p.ttft) == "number" and p.ttft >= 0 and p.ttft < 120, name .. ".ttft")
    T.ok(type(p.tps) == "number" and p.tps >= 0 and p.tps < 5000, name .. ".tps")
    T.ok(type(p.jitter) == "number" and p.jitter >= 0 and p.jitter < 1, name .. ".jitter")
    T.ok(p.prefill_per_1k == nil or (type(p.prefill_per_1k) == "number" and p.prefill_per_1k >= 0))
    T.ok(type(p.source) == "string" and #p.source > 0, name .. ".source")
    if name ~= "zero" then T.ok(p.ttft > 0 and p.tps > 0, name .. " has delays") end
  end
  T.ok(n >= 40, "profiles: " .. n)
  T.eq(P.profiles.zero.ttft, 0)
  T.eq(P.profiles.zero.tps, 0)
  T.eq(P.profiles.zero.jitter, 0)
end)

T.test("lookup: exact, longest prefix, provider prefix, default", function()
  local cases = {
    { "gpt-4o", "gpt-4o" },
    { "gpt-4o-2024-08-06", "gpt-4o" },
    { "gpt-4o-mini-2024-07-18", "gpt-4o-mini" },
    { "GPT-4O-MINI", "gpt-4o-mini" },
    { "openai/gpt-4.1-mini", "gpt-4.1-mini" },
    { "sim/o3", "o3" },
    { "o3-mini-2025-01-31", "o3-mini" },
    { "gpt-5-2025-08-07", "gpt-5" },
    { "gpt-5.4-mini-2026-03-17", "gpt-5.4-mini" },
    { "gpt-5.2", "gpt-5." },
    { "claude-3-5-sonnet-20241022", "claude-3-5-sonnet" },
    { "claude-sonnet-4-20250514", "claude-sonnet-4" },
    { "claude-sonnet-4-5-20250929", "claude-sonnet-4-5" },
    { "claude-haiku-4-5-20251001", "claude-haiku-4-5" },
    { "claude-mythos-5", "claude-" },
    { "zero", "zero" },
    { "some-local-model", "default" },
    { nil, "default" },
  }
  for _, c in ipairs(cases) do
    local p, key = P.lookup(c[1])
    T.eq(key, c[2], tostring(c[1]))
    T.ok(p == P.profiles[c[2]])
  end
end)

T.test("the models that matter have their own profile", function()
  -- Chat models of the price table (shared/reference) that experiments use.
  for _, m in ipairs({ "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano",
    "o3", "o3-mini", "o4-mini", "gpt-3.5-turbo", "gpt-5", "gpt-5-mini", "gpt-5-nano",
    "claude-3-7-sonnet-20250219", "claude-3-haiku-20240307", "claude-sonnet-4-5",
    "claude-haiku-4-5", "claude-opus-4-1", "claude-4-sonnet-20250514", "gemini-2.5-flash",
    "deepseek-chat" }) do
    local _, key = P.lookup(m)
    T.ok(key ~= "default" and key ~= "claude-", m .. " -> " .. key)
  end
  -- Smaller models of a family answer sooner or faster than the flagship.
  T.ok(P.lookup("gpt-4.1-nano").tps > P.lookup("gpt-4.1").tps)
  T.ok(P.lookup("o3").ttft > 5 * P.lookup("gpt-4o").ttft)
end)
