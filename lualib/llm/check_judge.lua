-- LLM-as-judge for llm.check: the prompt a judge model gets, and a
-- forgiving reader of its verdict.
--
-- The prompt asks for three lines:
--   VERDICT: PASS | FAIL
--   SCORE: <0..scale>
--   REASON: <one sentence>
-- but judges answer in many shapes, so parse() accepts, in this order:
--   1. a JSON object anywhere in the answer: {"verdict": "pass"|"fail",
--      "pass": true, "score": 7, "reason": "..."} (also "passed",
--      "result", "correct", "explanation");
--   2. a "verdict:" / "result:" / "decision:" / "grade:" line (markdown
--      bold, quotes and brackets ignored) saying pass/fail, yes/no,
--      correct/incorrect, right/wrong, true/false, accept/reject;
--   3. a bare PASS or FAIL (or "Correct." / "Incorrect." / "Yes" / "No" as
--      the first word) when only one of the pair occurs;
--   4. a score: "SCORE: 7", "score: 7/10", "7 out of 10", "rating: 4/5";
--      with no verdict, the answer passes when score/scale >= pass_score.
-- A verdict and a score may both be present: the verdict decides, the
-- score is reported. An answer with neither is an error (the check
-- raises, and the experiment leaves the case out of quality, saying why).
local M = {}

M.DEFAULT_SCALE = 10
M.DEFAULT_PASS_SCORE = 0.5

-- The judge's instructions. The words are part of the contract with the
-- simulator's future judge skill: keep "VERDICT:", "SCORE:" and "REASON:".
M.SYSTEM = [[You are a strict, fair grader. You grade one answer against the rubric below.
Reply with exactly three lines:
VERDICT: PASS or VERDICT: FAIL
SCORE: an integer from 0 to %d
REASON: one sentence saying why]]

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

--- The request for one grading: {system=, user=}.
-- parts: input (the question or task, may be nil), expected (a reference
-- answer, may be nil), output (the answer to grade), rubric, scale.
function M.request(parts)
  local lines = {}
  lines[#lines + 1] = "Rubric:\n" .. trim(parts.rubric)
  if parts.input ~= nil and parts.input ~= "" then lines[#lines + 1] = "Task:\n" .. trim(parts.input) end
  if parts.expected ~= nil and parts.expected ~= "" then
    lines[#lines + 1] = "Reference answer:\n" .. trim(parts.expected)
  end
  lines[#lines + 1] = "Answer to grade:\n" .. trim(parts.output)
  lines[#lines + 1] = "Grade the answer to grade."
  return { system = M.SYSTEM:format(parts.scale or M.DEFAULT_SCALE), user = table.concat(lines, "\n\n") }
end

local POSITIVE = { pass = true, passed = true, yes = true, correct = true, right = true, ["true"] = true,
                   accept = true, accepted = true, good = true, acceptable = true, ok = true }
local NEGATIVE = { fail = true, failed = true, no = true, incorrect = true, wrong = true, ["false"] = true,
                   reject = true, rejected = true, bad = true, unacceptable = true }

local function word_verdict(w)
  w = w and w:lower()
  if POSITIVE[w] then return true end
  if NEGATIVE[w] then return false end
  return nil
end

-- Markdown decoration that judges like: **VERDICT:** `PASS`
local function plain(s)
  return (s:gsub("[%*_`#>]", ""))
end

local function from_json(text, cjson)
  for obj in text:gmatch("%b{}") do
    local ok, doc = pcall(cjson.decode, obj)
    if ok and type(doc) == "table" then
      local verdict
      for _, k in ipairs { "pass", "passed", "correct" } do
        if type(doc[k]) == "boolean" then verdict = doc[k] end
      end
      for _, k in ipairs { "verdict", "result", "grade", "decision" } do
        if verdict == nil and type(doc[k]) == "string" then verdict = word_verdict(doc[k]:match("%a+")) end
      end
      local score = tonumber(doc.score or doc.rating)
      local reason = doc.reason or doc.explanation or doc.rationale
      if verdict ~= nil or score ~= nil then
        return verdict, score, type(reason) == "string" and reason or nil, tonumber(doc.scale or doc.max_score)
      end
    end
  end
end

local LABELS = { "verdict", "result", "decision", "grade", "judgement", "judgment", "assessment" }

local function from_lines(text)
  local verdict, score, scale, reason
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do
    local l = plain(line)
    local key, rest = l:match("^%s*([%a ]-)%s*:%s*(.-)%s*$")
    key = key and key:lower()
    if key then
      for _, label in ipairs(LABELS) do
        if key == label or key == "final " .. label then
          local w = rest:match("%a+")
          local v = word_verdict(w)
          if v ~= nil and verdict == nil then verdict = v end
        end
      end
      if (key == "score" or key == "rating" or key == "final score") and score == nil then
        local n, d = rest:match("^%[?(%-?%d+%.?%d*)%]?%s*/%s*(%d+%.?%d*)")
        if n then score, scale = tonumber(n), tonumber(d)
        else
          n, d = rest:match("^(%-?%d+%.?%d*)%s+out%s+of%s+(%d+%.?%d*)")
          if n then score, scale = tonumber(n), tonumber(d)
          else score = tonumber(rest:match("^%[?(%-?%d+%.?%d*)")) end
        end
      end
      if (key == "reason" or key == "reasoning" or key == "explanation" or key == "rationale")
          and reason == nil and rest ~= "" then
        reason = rest
      end
    end
  end
  if score == nil then
    -- "7/10" or "4 out of 5" anywhere; only the usual scales, so that a
    -- date or a fraction in the reasoning is not read as a score
    for n, d in text:gmatch("(%d+%.?%d*)%s*/%s*(%d+)") do
      if score == nil and (d == "5" or d == "10" or d == "100") then score, scale = tonumber(n), tonumber(d) end
    end
    for n, d in text:gmatch("(%d+%.?%d*)%s+out%s+of%s+(%d+)") do
      if score == nil then score, scale = tonumber(n), tonumber(d) end
    end
  end
  return verdict, score, scale, reason
end

-- A bare verdict word: PASS or FAIL anywhere (as a word, in capitals),
-- or a first word such as "Correct." or "No,".
local function bare(text)
  local p = plain(text)
  local has_pass = p:find("%f[%a]PASS%f[%A]") or p:find("%f[%a]PASSED%f[%A]")
  local has_fail = p:find("%f[%a]FAIL%f[%A]") or p:find("%f[%a]FAILED%f[%A]")
  if has_pass and not has_fail then return true end
  if has_fail and not has_pass then return false end
  if has_pass and has_fail then return nil, "ambiguous" end
  return word_verdict(p:match("^%s*(%a+)"))
end

--- parse(text, {scale=, pass_score=}) -> pass, score (0..1 or nil), reason
-- | nil, message when the answer holds no verdict and no score.
function M.parse(text, opts)
  opts = opts or {}
  local scale_default = opts.scale or M.DEFAULT_SCALE
  local pass_score = opts.pass_score or M.DEFAULT_PASS_SCORE
  if type(text) ~= "string" or not text:find("%S") then return nil, "the judge's answer is empty" end
  local verdict, score, reason, scale = from_json(text, require "cjson")
  if verdict == nil and score == nil then
    verdict, score, scale, reason = from_lines(text)
  end
  local ambiguous
  if verdict == nil then verdict, ambiguous = bare(text) end
  scale = scale or scale_default
  local frac
  if score ~= nil and scale and scale > 0 then frac = math.max(0, math.min(1, score / scale)) end
  if verdict == nil and frac ~= nil then verdict = frac >= pass_score end
  if verdict == nil then
    local snippet = trim(text):gsub("%s+", " ")
    if #snippet > 120 then snippet = snippet:sub(1, 117) .. "..." end
    return nil, (ambiguous and "the judge's answer says both PASS and FAIL: " or "no verdict in the judge's answer: ")
      .. ("%q"):format(snippet)
  end
  if reason == nil then
    reason = trim(text):gsub("%s+", " ")
    if #reason > 200 then reason = reason:sub(1, 197) .. "..." end
  end
  return verdict, frac, trim(reason)
end

return M
