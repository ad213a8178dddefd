-- llm.sim.task: labelled tasks for the simulator. A task registers cases
-- with their right answers; the simulator then answers a prompt that
-- contains a registered case right with a probability set by its rules
-- (the model's tier, the case's difficulty, and what the prompt holds:
-- the instructions, few-shot examples, the whole case or only part of it),
-- and otherwise with a plausible wrong answer. README "The simulator's
-- model" has the rules (src/sim_task_skill.c implements them); they are
-- the simulator's, not real model behaviour.
--
--   llm.sim.task {
--     cases = cases,                 -- a list of case tables (llm.data.jsonl ...)
--     answer = "label",              -- field or fn(case): the right answer
--                                    -- (default: expected, answer or label)
--     input = "text",                -- field or fn(case): the case's text as it
--                                    -- appears in a prompt (default: input,
--                                    -- question, prompt, query, text or user)
--     options = { "positive", "negative", "neutral" },   -- classification labels
--     instructions = { "sentiment" },  -- keywords of the task's instructions
--     difficulty = 1.5,              -- number, field or fn(case) (default 1)
--     group = "group",               -- field or fn(case): cases of one group
--                                    -- (paraphrases of one question) share their
--                                    -- luck, as a model answers them alike
--     name = "sentiment",            -- a task of the same name is replaced
--   } -> { name =, cases =, kind = "classification" | "extraction" | "short answer" }
--
-- This module builds the spec the C side takes (srv:add_task) and reads
-- task files for `llmrun serve --sim --task FILE`.
local M = {}

local INPUT_FIELDS = { "input", "question", "prompt", "query", "text", "user" }
local ANSWER_FIELDS = { "expected", "answer", "label" }
local KEYS = { cases = true, answer = true, input = true, options = true, instructions = true,
               difficulty = true, name = true, group = true }

local function fail(msg) error("llm.sim.task: " .. msg, 0) end

local function callable(f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return type(mt) == "table" and mt.__call ~= nil
end

-- A value as the text a model would say: integers without ".0".
local function text_of(v)
  if type(v) == "number" then
    local i = math.tointeger(v)
    if i then return tostring(i) end
    return ("%.15g"):format(v)
  end
  if type(v) == "string" then return v end
  if type(v) == "boolean" then return tostring(v) end
  return nil
end

local function getter(how, defaults, what)
  if how == nil then
    return function(case)
      for _, k in ipairs(defaults) do
        if case[k] ~= nil then return case[k] end
      end
      return nil
    end, table.concat(defaults, ", ")
  end
  if type(how) == "string" then return function(case) return case[how] end, how end
  if callable(how) then return how, "the " .. what .. " function" end
  fail(what .. " must be a field name or a function(case)")
end

local function string_list(v, what)
  if v == nil then return nil end
  if type(v) == "string" then v = { v } end
  if type(v) ~= "table" or #v == 0 then fail(what .. " must be a non-empty list of strings") end
  local out = {}
  for i, s in ipairs(v) do
    local t = text_of(s)
    if not t or not t:find("%S") then fail(("%s[%d] must be a non-empty string"):format(what, i)) end
    out[i] = t
  end
  return out
end

--- The spec for srv:add_task, and a description for the caller.
function M.build(spec)
  if type(spec) ~= "table" then fail("expects a table {cases =, answer =, ...}") end
  for k in pairs(spec) do
    if not KEYS[k] then fail(("unknown option '%s'"):format(tostring(k))) end
  end
  local cases = spec.cases
  if type(cases) ~= "table" or #cases == 0 then
    fail("cases must be a non-empty list of cases (if it comes from llm.data.jsonl, wrap it in assert(...))")
  end
  local get_input, input_from = getter(spec.input, INPUT_FIELDS, "input")
  local get_answer, answer_from = getter(spec.answer, ANSWER_FIELDS, "answer")
  local difficulty, get_difficulty = spec.difficulty, nil
  if type(difficulty) == "number" then
    if not (difficulty > 0) then fail("difficulty must be a number > 0") end
  elseif difficulty ~= nil then
    get_difficulty = getter(difficulty, {}, "difficulty")
    difficulty = nil
  end
  local get_group = spec.group ~= nil and getter(spec.group, {}, "group") or nil
  local name = spec.name
  if name ~= nil and (type(name) ~= "string" or name == "") then fail("name must be a non-empty string") end
  local out = { name = name or "task", difficulty = difficulty or 1,
                options = string_list(spec.options, "options"),
                instructions = string_list(spec.instructions, "instructions"), cases = {} }
  local function norm(s) return (s:lower():gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")) end
  local option_set = {}
  for _, o in ipairs(out.options or {}) do option_set[norm(o)] = true end
  local spans = 0
  for i, case in ipairs(cases) do
    if type(case) ~= "table" then fail(("cases[%d] is a %s, not a table"):format(i, type(case))) end
    local input, answer = text_of(get_input(case)), text_of(get_answer(case))
    if not input or not input:find("%S") then
      fail(("case %d has no input text (from %s)"):format(i, input_from))
    end
    if not answer or not answer:find("%S") then
      fail(("case %d has no answer (from %s)"):format(i, answer_from))
    end
    local d
    if get_difficulty then
      d = get_difficulty(case)
      if d ~= nil and (type(d) ~= "number" or not (d > 0)) then
        fail(("case %d: difficulty must be a number > 0, got %s"):format(i, tostring(d)))
      end
    end
    if out.options and not option_set[norm(answer)] then
      fail(("case %d: the answer %q is not one of the options"):format(i, answer))
    end
    local g = get_group and text_of(get_group(case)) or nil
    out.cases[i] = { input = input, answer = answer, difficulty = d, group = g }
    if input:lower():find(answer:lower(), 1, true) then spans = spans + 1 end
  end
  local kind = out.options and "classification" or (spans * 2 >= #cases and "extraction" or "short answer")
  return out, { name = out.name, cases = #cases, kind = kind, options = out.options }
end

-- ---- task files (llmrun serve --sim --task FILE) ------------------------------------------

--- Reads a JSON Lines task file: one case per line ({"input": ...,
-- "answer": ...}, the same default fields as llm.sim.task, and optionally
-- "difficulty"), and at most one line {"task": {name=, options=,
-- instructions=, difficulty=, input=, answer=, group=}} with the task's
-- settings (input, answer and group name the fields). -> a spec for llm.sim.task | nil, err
function M.read_file(path)
  local data = require "llm.data"
  local rows, err = data.jsonl(path)
  if not rows then return nil, tostring(err) end
  local settings, cases = {}, {}
  for i, row in ipairs(rows) do
    if type(row.task) == "table" then
      if next(settings) then return nil, ("%s: record %d: a second \"task\" line"):format(path, i) end
      settings = row.task
    else
      cases[#cases + 1] = row
    end
  end
  local spec = { cases = cases }
  for _, k in ipairs { "name", "options", "instructions", "difficulty", "input", "answer", "group" } do
    if settings[k] ~= nil then spec[k] = settings[k] end
  end
  for k in pairs(settings) do
    if spec[k] == nil then return nil, ("%s: unknown task setting '%s'"):format(path, tostring(k)) end
  end
  if spec.difficulty == nil then
    -- a per-case "difficulty" field is read when the task sets none
    for _, c in ipairs(cases) do
      if c.difficulty ~= nil then spec.difficulty = "difficulty" break end
    end
  end
  spec.name = spec.name or (path:match("([^/]+)%.jsonl?$") or path:match("([^/]+)$"))
  return spec
end

return M
