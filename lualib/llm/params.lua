-- The one policy for request parameters a model does not take (the
-- rules themselves are data in llm.model_rules).
--
--   family(rules_list, model_name) -> the first family whose pattern
--                                     matches, or nil
--   apply(params, body, ctx) -> body   checks and rewrites body in place
--   reject(ctx, name, why [, action])  one unsupported parameter: drops
--                                      it (false) or raises
--
-- ctx: {model = name, provider = name, family = name, drop_params =
-- true | false | nil, strict = bool}. Policy: drop_params = true drops
-- every unsupported parameter, false raises on every one, nil lets the
-- rule's action decide ("drop" or "error"). A drop warns once per
-- provider, model and parameter on stderr. Raising is misuse: the
-- message names the parameter, the model and the provider.
--
-- Unknown fields (a name the provider's API does not have, usually a
-- typo: `temprature`) follow one policy, README "Unknown request fields":
-- where the real API rejects them (Anthropic, ctx.strict) they raise;
-- OpenAI-compatible servers take extra fields (vLLM, OpenRouter, llama.cpp
-- read their own), so there they are sent, with one warning per provider,
-- model and field. Both name the nearest known field. A request's
-- `extra = {...}` is sent as it is, without any check (the wires merge it
-- into the body they encode).
--
--   nearest(name, known) -> the known name closest to name, or nil
--   check_fields(body, known, ctx)   warns (or, ctx.strict, raises) once
--                                    per unknown field
local M = {}

local warned = {}

local function short_name(name)
  return (name:match("([^/]+)$")) or name
end

--- The family of model `name` in a list of {match = {patterns}} entries.
function M.family(list, name)
  local base = short_name(name)
  for _, fam in ipairs(list) do
    for _, pat in ipairs(fam.match) do
      if base:find(pat) then return fam end
    end
  end
  return nil
end

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) == "table" then return "a table" end
  return tostring(v)
end

local function where(ctx)
  return ("model \"%s\" (provider %s%s)"):format(ctx.model, ctx.provider,
    ctx.family and (", " .. ctx.family) or "")
end

--- Decides about one unsupported parameter: returns false (drop it) after
-- a warning, or raises. action: the rule's default, "drop" or "error".
function M.reject(ctx, name, why, action)
  if ctx.drop_params == true then
    action = "drop"
  elseif ctx.drop_params == false then
    action = "error"
  end
  local what = ("parameter '%s' %s for %s"):format(name, why, where(ctx))
  if action ~= "drop" then
    error("llm: " .. what .. "; remove it, or set drop_params = true on the model to drop it", 0)
  end
  local key = ctx.provider .. "\0" .. ctx.model .. "\0" .. name
  if not warned[key] then
    warned[key] = true
    io.stderr:write("llmrun: warning: ", what, ": dropped (drop_params = false raises instead)\n")
  end
  return false
end

--- Forgets which drops were warned about (tests).
function M.reset_warnings()
  warned = {}
end

-- Edit distance with transpositions (optimal string alignment), stopping
-- early once it passes limit.
local function distance(a, b, limit)
  local la, lb = #a, #b
  if math.abs(la - lb) > limit then return limit + 1 end
  local prev2, prev, cur = {}, {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    cur = { [0] = i }
    local best = i
    for j = 1, lb do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local d = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        d = math.min(d, prev2[j - 2] + 1)
      end
      cur[j] = d
      if d < best then best = d end
    end
    if best > limit then return limit + 1 end
    prev2, prev = prev, cur
  end
  return prev[lb]
end

--- The known name nearest to name (an edit distance of at most a third of
-- its length, at least 1; "_" and "-" and case do not count), or nil.
function M.nearest(name, known)
  if type(name) ~= "string" then return nil end
  local plain = name:lower():gsub("[-_]", "")
  local limit = math.max(1, #name // 3)
  local best, best_d
  for _, k in ipairs(known) do
    local d = distance(plain, (k:lower():gsub("[-_]", "")), limit)
    if d <= limit and (not best_d or d < best_d or (d == best_d and k < best)) then
      best, best_d = k, d
    end
  end
  return best
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

local function did_you_mean(name, known)
  local near = M.nearest(name, known)
  return near and ("; did you mean '%s'?"):format(near) or ""
end

--- Checks body's top-level names against known (a set: name -> true).
function M.check_fields(body, known, ctx)
  local list
  for k in pairs(body) do
    if not known[k] and k ~= "extra" then
      list = list or sorted_keys(known)
      local hint = did_you_mean(k, list)
      if ctx.strict then
        error(("llm: unknown request field '%s' for %s: the API rejects unknown fields%s "
          .. "(extra = {...} sends a field without any check)"):format(tostring(k), where(ctx), hint), 0)
      end
      local key = "unknown\0" .. ctx.provider .. "\0" .. ctx.model .. "\0" .. tostring(k)
      if not warned[key] then
        warned[key] = true
        io.stderr:write(("llmrun: warning: request field '%s' is unknown to %s and sent as it is%s "
          .. "(OpenAI-compatible servers may take fields of their own, OpenAI rejects unknown ones; "
          .. "extra = {...} sends a field on purpose without this warning)\n"):format(tostring(k),
          where(ctx), hint))
      end
    end
  end
end

local function effort_none(body)
  local e = body.reasoning_effort
  return e == nil or e == "none"
end

--- Applies a params table to a request body (OpenAI-shaped, model not
-- in it): unknown parameters raise when ctx.strict; unsupported ones
-- follow the policy; renames happen. Returns body.
function M.apply(params, body, ctx)
  local names = {}
  for k in pairs(body) do names[#names + 1] = k end
  table.sort(names, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(names) do
    local v = body[k]
    local rule = params[k]
    if rule == nil and k ~= "extra" then
      if ctx.strict then
        local known = {}
        for name in pairs(params) do known[name] = true end
        M.check_fields({ [k] = v }, known, ctx) -- raises, naming the nearest field
      end
    elseif type(rule) == "table" then
      local exempt = rule.unless_effort_none and effort_none(body)
      if rule.default ~= nil and not exempt then
        if v == rule.default then
          body[k] = nil -- the API's default: leave it out
        elseif not M.reject(ctx, k, ("= %s is not supported (only %s)"):format(show(v), show(rule.default)),
                            rule.action) then
          body[k] = nil
        end
      elseif rule.unsupported and not exempt then
        if not M.reject(ctx, k, "is not supported", rule.action) then body[k] = nil end
      elseif rule.rename then
        if body[rule.rename] == nil then body[rule.rename] = v end
        body[k] = nil
      end
    end
  end
  return body
end

return M
