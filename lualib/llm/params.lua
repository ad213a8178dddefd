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
    if rule == nil then
      if ctx.strict then
        error(("llm: unknown request parameter '%s' for %s"):format(tostring(k), where(ctx)), 0)
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
