-- llm.check: ready-made checks of a model's answer, for an experiment's
-- `check =` and for a cascade's `accept =`.
--
--   check = llm.check.equals()                      -- r.text vs case.expected / answer / label
--   check = llm.check.equals { field = "label" }     -- vs another field
--   accept = llm.check.json_schema { type = "object", required = { "name" } }
--   check = llm.check.judge { model = llm.model "gpt-4o", rubric = "Polite and correct." }
--
-- A check is a callable object. Called as an experiment's check,
-- chk(case, response [, result]); called as a cascade's accept,
-- chk(response, request, opts) (told apart by the response's type). It
-- returns pass (a boolean), reason (a short string saying why, shown per
-- case in reports) and, for graded checks, a score in [0, 1]. An answer
-- it cannot grade (a judge with no verdict, an embedding call that
-- failed) raises: an experiment then leaves that case out of quality and
-- says so, a cascade escalates.
--
-- The expected value of a case: `expected =` (a value, a list of
-- accepted values, or fn(case)), else `field =` (a field name), else the
-- case's field `expected`, `answer` or `label`, the first one present.
-- A check used as a cascade's accept has no case: give it `expected =`
-- (or use a check that needs none: regex, one_of, json_valid, json_schema).
local context = require "llm.context"
local response = require "llm.response"

local M = {}

local Check = {}
Check.__index = Check
Check.__name = "llm.check"
M.Check = Check

M.EXPECTED_FIELDS = { "expected", "answer", "label" }
M.INPUT_FIELDS = { "input", "question", "prompt", "query", "text", "user" }

local function callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return type(mt) == "table" and mt.__call ~= nil
end

local function fail(name, msg) error(("llm.check.%s: %s"):format(name, msg), 3) end

local function short(s, n)
  n = n or 60
  s = tostring(s):gsub("%s+", " ")
  if (utf8.len(s) or #s) > n then
    local cut = utf8.offset(s, n - 2) or (n - 2)
    s = s:sub(1, cut - 1) .. "..."
  end
  return ("%q"):format(s):gsub("\\\n", "\\n")
end
M._short = short

-- ---- normalization ------------------------------------------------------------------

-- Typographic characters read as their plain forms.
local TYPOGRAPHIC = {
  ["\u{2018}"] = "'", ["\u{2019}"] = "'", ["\u{201C}"] = '"', ["\u{201D}"] = '"',
  ["\u{2013}"] = "-", ["\u{2014}"] = " ", ["\u{2212}"] = "-", ["\u{2026}"] = " ",
  ["\u{00A0}"] = " ", ["\u{202F}"] = " ", ["\u{2009}"] = " ",
}

-- A number written with thousands separators, a sign, trailing zeros:
-- its canonical form, or nil when it is not one number (1,2,3).
local function canonical_number(int, frac)
  if int:find(",", 1, true) then
    -- 1,234,567: a first group of 1-3 digits, then groups of exactly 3
    local groups = {}
    for g in (int .. ","):gmatch("([^,]*),") do groups[#groups + 1] = g end
    if not groups[1]:match("^%d%d?%d?$") then return nil end
    for i = 2, #groups do
      if not groups[i]:match("^%d%d%d$") then return nil end
    end
    int = table.concat(groups)
  end
  local n = tonumber(int .. frac)
  if not n then return nil end
  if n == math.floor(n) and math.abs(n) < 1e15 then return ("%d"):format(n) end
  return ("%.12g"):format(n)
end

--- normalize(text) -> text compared by equals/contains/one_of: lower case
-- (ASCII), numbers in one form (1,000.50 -> 1000.5; +3 -> 3; 3.0 -> 3),
-- punctuation dropped (also % and quotes; a number's sign and decimal
-- point kept), white space collapsed and trimmed.
function M.normalize(s)
  s = tostring(s or ""):lower()
  for k, v in pairs(TYPOGRAPHIC) do s = s:gsub(k, v) end
  local numbers = {}
  s = s:gsub("([%+%-]?)(%d[%d,]*)(%.?%d*)", function(sign, int, frac)
    local dot = ""
    if frac == "." then frac, dot = "", "." end -- "42." ends a sentence
    local c = canonical_number(int, frac)
    if not c then return nil end
    if sign == "-" and c ~= "0" then c = "-" .. c end
    numbers[#numbers + 1] = c
    return "\1" .. #numbers .. "\2" .. dot
  end)
  s = s:gsub("%p", " "):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  return (s:gsub("\1(%d+)\2", function(i) return numbers[tonumber(i)] end))
end

-- ---- what a check reads -----------------------------------------------------------------

local function text_of(out)
  local t = type(out)
  if t == "string" then return out end
  if t == "number" or t == "boolean" then return tostring(out) end
  if t == "table" then
    if out.text ~= nil then return tostring(out.text) end
    if out.output ~= nil then return tostring(out.output) end
  end
  return nil
end
M.text_of = text_of

local function first_field(case, fields)
  if type(case) ~= "table" then return nil end
  for _, f in ipairs(fields) do
    if case[f] ~= nil then return case[f], f end
  end
end

--- The expected answer of a case by the default rule (nil when none).
function M.expected_of(case) return (first_field(case, M.EXPECTED_FIELDS)) end

--- The input of a case: a string case itself, else its field input,
-- question, prompt, query, text or user, else nil.
function M.input_of(case)
  if type(case) == "string" then return case end
  return (first_field(case, M.INPUT_FIELDS))
end

-- The last user message of a request (a cascade's accept gets requests).
local function request_text(req)
  if type(req) == "string" then return req end
  if type(req) ~= "table" then return nil end
  if req.user then return tostring(req.user) end
  return (require("llm.messages").last_user_text(req.messages))
end

-- Options shared by the checks that compare with an expected value.
local function expected_getter(name, opts)
  local given, field = opts.expected, opts.field
  return function(ctx)
    if given ~= nil then
      if callable(given) then return given(ctx.case) end
      return given
    end
    if ctx.case == nil then
      error(("llm.check.%s: no expected value (as a cascade's accept, give expected = ...)"):format(name), 0)
    end
    if field ~= nil then
      local v = type(ctx.case) == "table" and ctx.case[field] or nil
      if v == nil then error(("llm.check.%s: the case has no field %q"):format(name, field), 0) end
      return v
    end
    -- an experiment run with its own `expected =` rule passes it here
    local from_experiment = context.get("_experiment_expected")
    if from_experiment then
      local v = from_experiment(ctx.case)
      if v ~= nil then return v end
    end
    local v = M.expected_of(ctx.case)
    if v == nil then
      error(("llm.check.%s: the case has no expected value (no field expected, answer or label; "
        .. "give field = or expected =)"):format(name), 0)
    end
    return v
  end
end

local function as_list(v)
  if type(v) == "table" and getmetatable(v) == nil then return v end
  return { v }
end

-- A table of options, or a literal expected value (a string, a number,
-- a list of accepted values) given in its place.
local OPTION_KEYS = { expected = true, field = true, exact = true, abs = true, rel = true, pick = true,
  model = true, threshold = true, extract = true, name = true, options = true }
local function opts_of(name, arg, allowed)
  if arg == nil then return {} end
  if type(arg) == "table" and getmetatable(arg) == nil and arg[1] == nil then
    for k in pairs(arg) do
      if not allowed[k] then fail(name, ("unknown option %s"):format(tostring(k))) end
    end
    return arg
  end
  if callable(arg) then return { expected = arg } end
  return { expected = arg }
end

-- ---- the check object ---------------------------------------------------------------------

local function new(name, fn, extra)
  local c = setmetatable({ name = name, fn = fn }, Check)
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end
M.new = new

function Check.__call(self, a, b, c)
  local ctx
  if response.is(a) then
    ctx = { response = a, request = b, call_opts = c }      -- a cascade's accept(resp, req, opts)
  else
    ctx = { case = a, response = b, result = c }           -- an experiment's check(case, resp, result)
  end
  local out = text_of(ctx.response)
  if out == nil and type(ctx.result) == "table" then out = text_of(ctx.result) end
  if out == nil then return false, self.name .. ": no answer text", 0 end
  ctx.output = out
  return self.fn(out, ctx)
end

function Check:__tostring() return "llm.check." .. self.name end

--- chk:accept() -> a plain function(resp, req, opts) -> bool, reason (for
-- code that wants a function rather than a callable table).
function Check:accept()
  return function(resp, req, opts) return self(resp, req, opts) end
end

-- ---- comparisons --------------------------------------------------------------------------

--- equals([expected | {expected=, field=, exact=}]): the answer equals the
-- expected value (or one of a list of them) after normalize(); exact = true
-- compares the trimmed text as it is.
function M.equals(arg)
  local opts = opts_of("equals", arg, OPTION_KEYS)
  local expected = expected_getter("equals", opts)
  local norm = opts.exact and function(s) return (tostring(s):match("^%s*(.-)%s*$")) end or M.normalize
  return new("equals", function(out, ctx)
    local want = as_list(expected(ctx))
    local got = norm(out)
    for _, w in ipairs(want) do
      if got == norm(w) then return true, ("equals %s"):format(short(w)), 1 end
    end
    return false, ("got %s, expected %s"):format(short(out), #want == 1 and short(want[1])
      or ("one of " .. #want .. " answers, first " .. short(want[1]))), 0
  end)
end

--- contains(text | list | {expected=, field=}): the answer contains the
-- text (every one of a list) after normalize(), on word boundaries.
function M.contains(arg)
  local opts = opts_of("contains", arg, OPTION_KEYS)
  local expected = expected_getter("contains", opts)
  return new("contains", function(out, ctx)
    local got = " " .. M.normalize(out) .. " "
    local missing = {}
    local want = as_list(expected(ctx))
    for _, w in ipairs(want) do
      if not got:find(" " .. M.normalize(w) .. " ", 1, true) then missing[#missing + 1] = short(w, 30) end
    end
    if #missing == 0 then return true, ("contains %s"):format(short(want[1], 30)), 1 end
    return false, ("%s does not contain %s"):format(short(out, 40), table.concat(missing, ", ")),
      (#want - #missing) / #want
  end)
end

--- regex(pattern): the answer matches a Lua pattern (string.find: %d,
-- %a, character classes; no alternation "|" and no {n} counts: these are
-- Lua patterns, not regular expressions). The text is used as it is.
function M.regex(pattern)
  if type(pattern) ~= "string" then fail("regex", "a Lua pattern (string) is required") end
  local ok, err = pcall(string.find, "", pattern)
  if not ok then fail("regex", "bad Lua pattern: " .. tostring(err):gsub("^.-:%d+: ", "")) end
  return new("regex", function(out)
    if out:find(pattern) then return true, ("matches %s"):format(pattern), 1 end
    return false, ("%s does not match %s"):format(short(out, 40), pattern), 0
  end)
end

--- one_of(options [, {extract = true, expected =, field =}]): the normalized
-- answer is one of the options. extract = true also accepts an answer that
-- names exactly one option as a word ("The sentiment is positive.").
-- With expected/field, that option must also be the expected one.
function M.one_of(options, extra)
  if type(options) ~= "table" or #options == 0 then fail("one_of", "a non-empty list of options is required") end
  extra = extra or {}
  local norm = {}
  for i, o in ipairs(options) do norm[i] = M.normalize(o) end
  local expected = (extra.expected ~= nil or extra.field ~= nil) and expected_getter("one_of", extra) or nil
  return new("one_of", function(out, ctx)
    local got = M.normalize(out)
    local found
    for i, o in ipairs(norm) do if got == o then found = i end end
    if not found and extra.extract then
      local hits = {}
      for i, o in ipairs(norm) do
        if (" " .. got .. " "):find(" " .. o .. " ", 1, true) then hits[#hits + 1] = i end
      end
      if #hits == 1 then found = hits[1] end
      if #hits > 1 then
        return false, ("%s names %d of the options"):format(short(out, 40), #hits), 0
      end
    end
    if not found then
      return false, ("%s is not one of %d options"):format(short(out, 40), #options), 0
    end
    if expected then
      local want = M.normalize(expected(ctx))
      if norm[found] ~= want then
        return false, ("answered %s, expected %s"):format(short(options[found], 30), short(want, 30)), 0
      end
    end
    return true, ("answered %s"):format(short(options[found], 30)), 1
  end)
end

-- ---- JSON -----------------------------------------------------------------------------------

--- json_valid(): the answer is one JSON document (inside a ``` fence or
-- not: the fence is removed first).
function M.json_valid()
  local J = require "llm.check_json"
  return new("json_valid", function(out)
    local doc, err = J.decode(J.extract(out))
    if doc == nil then return false, "not JSON: " .. err, 0 end
    return true, "valid JSON", 1
  end)
end

--- json_schema(schema): the answer is JSON that conforms to schema, a
-- subset of JSON Schema (see llm.check_json for the keywords; pattern is
-- a Lua pattern). A keyword outside the subset raises here.
function M.json_schema(schema)
  local J = require "llm.check_json"
  local ok, err = pcall(J.check_schema, schema)
  if not ok then fail("json_schema", err) end
  return new("json_schema", function(out)
    local doc, derr = J.decode(J.extract(out))
    if doc == nil then return false, "not JSON: " .. derr, 0 end
    local verr = J.validate(doc, schema)
    if verr then return false, verr, 0 end
    return true, "conforms to the schema", 1
  end)
end

-- ---- numbers ----------------------------------------------------------------------------------

-- The numbers written in a text, in order (thousands separators, signs,
-- decimals and exponents read).
local function numbers_in(text)
  local list = {}
  for sign, int, frac, exp in tostring(text):gmatch("([%+%-]?)(%d[%d,]*)(%.?%d*)([eE]?[%+%-]?%d*)") do
    if frac == "." then frac = "" end
    if exp ~= "" and not exp:match("%d$") then exp = "" end
    local c = canonical_number(int, frac)
    if c then
      local n = tonumber(c .. exp) or tonumber(c)
      if sign == "-" then n = -n end
      list[#list + 1] = n
    end
  end
  return list
end
M._numbers_in = numbers_in

--- numeric([expected | {expected=, field=, abs=, rel=, pick="last"|"first"|"only"}]):
-- the number in the answer is within abs (absolute) or rel (relative, a
-- fraction: 0.01 = 1%) of the expected number; both 0 by default (equal).
-- pick: which number of the answer counts (default the last one, as in
-- "17 + 25 = 42"); "only" fails an answer with several.
function M.numeric(arg)
  local opts = opts_of("numeric", arg, OPTION_KEYS)
  local abs, rel = opts.abs or 0, opts.rel or 0
  if type(abs) ~= "number" or abs < 0 or type(rel) ~= "number" or rel < 0 then
    fail("numeric", "abs and rel must be numbers >= 0")
  end
  local pick = opts.pick or "last"
  if pick ~= "last" and pick ~= "first" and pick ~= "only" then
    fail("numeric", "pick must be \"last\", \"first\" or \"only\"")
  end
  local expected = expected_getter("numeric", opts)
  return new("numeric", function(out, ctx)
    local e = expected(ctx)
    local want = type(e) == "number" and e or numbers_in(e)[1]
    if want == nil then error("llm.check.numeric: the expected value " .. short(e, 30) .. " is not a number", 0) end
    local nums = numbers_in(out)
    if #nums == 0 then return false, ("no number in %s"):format(short(out, 40)), 0 end
    if pick == "only" and #nums > 1 then return false, ("%d numbers in %s"):format(#nums, short(out, 40)), 0 end
    local got = pick == "first" and nums[1] or nums[#nums]
    local diff = math.abs(got - want)
    local tol = math.max(abs, rel * math.abs(want))
    local tol_text = tol > 0 and (" ± %.6g"):format(tol) or ""
    if diff <= tol then return true, ("%.10g, expected %.10g%s"):format(got, want, tol_text), 1 end
    return false, ("got %.10g, expected %.10g%s"):format(got, want, tol_text), 0
  end)
end

-- ---- meaning: embeddings and a judge -----------------------------------------------------------

local function cosine(a, b)
  local dot, na, nb = 0, 0, 0
  for i = 1, math.min(#a, #b) do
    dot, na, nb = dot + a[i] * b[i], na + a[i] * a[i], nb + b[i] * b[i]
  end
  if na == 0 or nb == 0 then return 0 end
  return dot / math.sqrt(na * nb)
end
M.cosine = cosine

-- Calls a check makes are tagged: inside an experiment the context says
-- "judge:<variant>"; elsewhere they get `default` (a cascade's accept:
-- "judge:<the call's tag>").
local function call_opts(ctx, default)
  if context.get("tag") ~= nil then return nil end
  local tag = ctx.call_opts and ctx.call_opts.tag
  return { tag = tag and (default .. ":" .. tostring(tag)) or default, case = ctx.call_opts and ctx.call_opts.case }
end

--- similar{model = embedding model, threshold = 0.85, expected =, field =}:
-- the cosine similarity of the answer's and the expected text's
-- embeddings (one :embed call with both) is at least threshold; the
-- score is the similarity.
function M.similar(opts)
  if type(opts) ~= "table" then fail("similar", "a table {model =, threshold =, ...} is required") end
  local model = opts.model
  if type(model) ~= "table" or not callable(model.embed) then
    fail("similar", "model must be an embedding model (llm.model \"text-embedding-3-small\")")
  end
  local threshold = opts.threshold or 0.85
  if type(threshold) ~= "number" or threshold < -1 or threshold > 1 then
    fail("similar", "threshold must be a number in [-1, 1]")
  end
  local expected = expected_getter("similar", opts)
  return new("similar", function(out, ctx)
    local want = tostring(expected(ctx))
    local r, err = model:embed({ out, want }, call_opts(ctx, "check"))
    if not r then error("llm.check.similar: the embedding call failed: " .. tostring(err), 0) end
    local sim = cosine(r.vectors[1], r.vectors[2])
    local score = math.max(0, sim)
    if sim >= threshold then return true, ("similarity %.3f >= %.2f"):format(sim, threshold), score end
    return false, ("similarity %.3f < %.2f to %s"):format(sim, threshold, short(want, 30)), score
  end, { threshold = threshold })
end

--- judge{model =, rubric =, scale = 10, pass_score = 0.5, reference = true,
-- input = field | fn(case), max_tokens = 300}: asks model to grade the
-- answer against the rubric (with the case's input and, when reference
-- is not false and there is one, its expected answer). The verdict and
-- score are read from the judge's answer by llm.check_judge.parse; the
-- score is reported in [0, 1]. The judge's calls are tagged
-- "judge:<variant>" in an experiment (costed apart from the variant),
-- "judge" elsewhere; j.stats holds {calls, cost, cost_unknown, no_verdict}.
function M.judge(opts)
  if type(opts) ~= "table" then fail("judge", "a table {model =, rubric =} is required") end
  local model, rubric = opts.model, opts.rubric
  if type(model) ~= "table" or not callable(model.chat) then fail("judge", "model must be a model (llm.model \"...\")") end
  if type(rubric) ~= "string" or not rubric:find("%S") then fail("judge", "rubric (a string) is required") end
  local J = require "llm.check_judge"
  local scale = opts.scale or J.DEFAULT_SCALE
  local pass_score = opts.pass_score or J.DEFAULT_PASS_SCORE
  if type(scale) ~= "number" or scale <= 0 then fail("judge", "scale must be a number > 0") end
  if type(pass_score) ~= "number" or pass_score < 0 or pass_score > 1 then
    fail("judge", "pass_score must be in [0, 1] (a share of the scale)")
  end
  local input = opts.input
  local stats = { calls = 0, cost = 0, cost_unknown = 0, no_verdict = 0 }
  local expected = opts.reference ~= false and expected_getter("judge", opts) or nil
  return new("judge", function(out, ctx)
    local task
    if ctx.case ~= nil then
      if type(input) == "string" then task = type(ctx.case) == "table" and ctx.case[input] or nil
      elseif callable(input) then task = input(ctx.case)
      else task = M.input_of(ctx.case) end
    else
      task = request_text(ctx.request)
    end
    local ref
    if expected and (opts.expected ~= nil or opts.field ~= nil or ctx.case ~= nil) then
      local ok, v = pcall(expected, ctx)
      if ok and v ~= nil then ref = type(v) == "table" and table.concat(v, " | ") or tostring(v) end
    end
    local req = J.request { input = task and tostring(task), expected = ref, output = out, rubric = rubric,
                            scale = scale }
    req.max_tokens, req.temperature = opts.max_tokens or 300, 0
    local r, err = model:chat(req, call_opts(ctx, "judge"))
    stats.calls = stats.calls + 1
    if not r then error("llm.check.judge: the judge's call failed: " .. tostring(err), 0) end
    if r.cost then stats.cost = stats.cost + r.cost else stats.cost_unknown = stats.cost_unknown + 1 end
    local pass, score, reason = J.parse(r.text, { scale = scale, pass_score = pass_score })
    if pass == nil then
      stats.no_verdict = stats.no_verdict + 1
      error("llm.check.judge: " .. score, 0)
    end
    return pass, "judge: " .. reason, score
  end, { stats = stats, model = model })
end

-- ---- combinations ---------------------------------------------------------------------------

local function checks_of(name, list)
  if type(list) ~= "table" or #list == 0 then fail(name, "a non-empty list of checks is required") end
  for i, c in ipairs(list) do
    if not callable(c) then fail(name, ("item %d is not a check"):format(i)) end
  end
  return list
end

local function run_one(c, ctx)
  if ctx.case == nil and ctx.request ~= nil then return c(ctx.response, ctx.request, ctx.call_opts) end
  return c(ctx.case, ctx.response, ctx.result)
end

local function as_verdict(v)
  if type(v) == "number" then return v >= 0.5, v end
  return v and true or false, (v and 1 or 0)
end

--- all{check, ...}: passes when every check passes (stops at the first
-- failure, whose reason it gives); score: the mean of their scores.
function M.all(list)
  checks_of("all", list)
  return new("all", function(_, ctx)
    local sum, reasons = 0, {}
    for _, c in ipairs(list) do
      local v, reason, score = run_one(c, ctx)
      local pass, s = as_verdict(v)
      sum = sum + (score or s)
      if not pass then return false, reason or "a check failed", sum / #list end
      reasons[#reasons + 1] = reason
    end
    return true, table.concat(reasons, "; "), sum / #list
  end)
end

--- any{check, ...}: passes when one check passes (the first that does
-- gives the reason); score: the best score.
function M.any(list)
  checks_of("any", list)
  return new("any", function(_, ctx)
    local best, reasons = 0, {}
    for _, c in ipairs(list) do
      local v, reason, score = run_one(c, ctx)
      local pass, s = as_verdict(v)
      best = math.max(best, score or s)
      if pass then return true, reason, best end
      reasons[#reasons + 1] = reason
    end
    return false, table.concat(reasons, "; "), best
  end)
end

return M
