-- An experiment, case by case: the rows of cmp:cases() (one per case,
-- each variant's answer, verdict, reason, cost and latency side by side),
-- their text form, and what repeats say about a case: pass@k, pass^k and
-- flakiness.
--
-- pass@k and pass^k from n runs of a case with c passes are the unbiased
-- estimators (Chen et al. 2021, "Evaluating Large Language Models Trained
-- on Code", for pass@k; the same reasoning for pass^k):
--   pass@k = 1 - C(n-c, k) / C(n, k)     at least one of k runs passes
--   pass^k = C(c, k) / C(n, k)           all k runs pass
-- With k = n (the default: k = repeats) they are simply "passed at least
-- once" and "passed every time". A run that failed with an error counts
-- as a failed run.
local check = require "llm.check"

local M = {}

-- C(a, k) / C(n, k) as a product, so large n never overflows.
local function choose_ratio(a, n, k)
  if a < k then return 0 end
  local r = 1
  for i = 0, k - 1 do r = r * (a - i) / (n - i) end
  return r
end

function M.pass_at_k(n, c, k) return 1 - choose_ratio(n - c, n, k) end
function M.pass_all_k(n, c, k) return choose_ratio(c, n, k) end

-- Runs of a variant grouped by case, in case order:
-- list of {id=, index=, runs={result...}, n=, passes=, judged=}.
function M.group(results)
  local by_id, list = {}, {}
  for _, r in ipairs(results) do
    local g = by_id[r.case]
    if not g then
      g = { id = r.case, index = r.index or math.huge, runs = {}, n = 0, passes = 0, judged = 0 }
      by_id[r.case] = g
      list[#list + 1] = g
    end
    g.runs[#g.runs + 1] = r
    g.n = g.n + 1
    if r.pass ~= nil then g.judged = g.judged + 1 end
    if r.pass then g.passes = g.passes + 1 end
  end
  table.sort(list, function(a, b)
    if a.index ~= b.index then return a.index < b.index end
    return a.id < b.id
  end)
  return list, by_id
end

local function plural(n, word) return ("%d %s%s"):format(n, word, n == 1 and "" or "s") end

--- Extra report rows and notes for repeated runs: pass@k, pass^k, flaky.
-- variants: the experiment's internal variant records; k: repeats;
-- pass_k: the k of the estimators. Returns metric defs, notes.
function M.repeat_metrics(variants, k, pass_k)
  local at, all, flaky = {}, {}, {}
  local notes = {}
  local any = false
  for _, v in ipairs(variants) do
    local groups = M.group(v.results)
    local a, b, f = { cases = {} }, { cases = {} }, { cases = {} }
    local flaky_ids = {}
    for _, g in ipairs(groups) do
      if g.judged > 0 then
        any = true
        local kk = math.min(pass_k, g.n)
        local i = #a + 1
        a[i], b[i], f[i] = M.pass_at_k(g.n, g.passes, kk), M.pass_all_k(g.n, g.passes, kk),
          (g.passes > 0 and g.passes < g.n) and 1 or 0
        a.cases[i], b.cases[i], f.cases[i] = g.id, g.id, g.id
        if f[i] == 1 then flaky_ids[#flaky_ids + 1] = g.id end
      end
    end
    at[v.name], all[v.name], flaky[v.name] = a, b, f
    if #a > 0 then
      local shown = {}
      for i = 1, math.min(#flaky_ids, 8) do shown[i] = flaky_ids[i] end
      notes[#notes + 1] = ("%s: %d of %s flaky (passed in some of its %d runs, failed in others)%s")
        :format(v.name, #flaky_ids, plural(#a, "case"), k, #flaky_ids > 0 and (": " .. table.concat(shown, ", ")
          .. (#flaky_ids > #shown and ", ..." or "")) or "")
    end
  end
  if not any then return {}, {} end
  local ks = tostring(pass_k)
  return {
    { key = "pass_at_k", label = "pass@" .. ks, unit = "%", mode = "diff", better = "higher", stat = "mean",
      arms = at },
    { key = "pass_all_k", label = "pass^" .. ks, unit = "%", mode = "diff", better = "higher", stat = "mean",
      arms = all },
    { key = "flaky", label = "flaky cases", unit = "%", mode = "diff", better = "lower", stat = "mean",
      arms = flaky },
  }, notes
end

-- ---- the rows ------------------------------------------------------------------------------

local Rows = {}
Rows.__index = Rows
Rows.__name = "llm.experiment.cases"
M.Rows = Rows

local function shorten(s, n)
  if s == nil then return nil end
  s = tostring(s):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
  if (utf8.len(s) or #s) <= n then return s end
  local cut = utf8.offset(s, n) or n
  return s:sub(1, cut - 1) .. "…"
end
M.shorten = shorten

-- A case with no input field: its scalar fields, sorted, as k=v.
local function describe(case)
  if type(case) ~= "table" then return tostring(case) end
  local keys = {}
  for k, v in pairs(case) do
    local t = type(v)
    if type(k) == "string" and k ~= "id" and (t == "string" or t == "number" or t == "boolean") then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. tostring(case[k]) end
  return table.concat(parts, " ")
end

local function field_or_fn(spec, case, default)
  if spec == nil then return default(case) end
  if type(spec) == "string" then return type(case) == "table" and case[spec] or nil end
  return spec(case)
end

local function text_of(r)
  local t = check.text_of(r.response)
  if t == nil and type(r.result) == "table" then t = check.text_of(r.result) end
  return t
end

local function mean(list, key)
  local total, n = 0, 0
  for _, r in ipairs(list) do
    if r[key] ~= nil then total, n = total + r[key], n + 1 end
  end
  return n > 0 and total / n or nil
end

--- The rows of an experiment: built from its variants' results (ex: the
-- settings: input, expected; cases: the case list; order: variant names).
function M.rows(ex, cases, variants)
  local order, rows, by_id = {}, {}, {}
  for i, v in ipairs(variants) do order[i] = v.name end
  for _, v in ipairs(variants) do
    local groups = M.group(v.results)
    for _, g in ipairs(groups) do
      local row = by_id[g.id]
      if not row then
        local case = cases[g.index]
        local input = field_or_fn(ex.input, case, check.input_of)
        local expected = field_or_fn(ex.expected, case, check.expected_of)
        if type(expected) == "table" then expected = table.concat(expected, " | ") end
        row = { id = g.id, index = g.index, case = case,
                input = shorten(input ~= nil and input or describe(case), 120),
                expected = expected ~= nil and tostring(expected) or nil, variants = {} }
        by_id[g.id] = row
        rows[#rows + 1] = row
      end
      -- the first run shows the answer; numbers are means over the runs
      local first = g.runs[1]
      local err = first.error
      local pass
      if g.judged > 0 then pass = g.passes == g.n end
      row.variants[v.name] = {
        output = text_of(first), pass = pass, passes = g.passes, runs = g.n,
        score = mean(g.runs, "shown_score"), reason = first.reason,
        error = err ~= nil and (type(err) == "table" and err.message or tostring(err)) or nil,
        cost = mean(g.runs, "cost"), latency_ms = mean(g.runs, "latency_ms"),
        check_cost = mean(g.runs, "check_cost"),
      }
    end
  end
  table.sort(rows, function(a, b)
    if a.index ~= b.index then return a.index < b.index end
    return a.id < b.id
  end)
  -- failures and disagreements, for the filters
  for _, row in ipairs(rows) do
    local verdicts, outputs, judged = {}, {}, false
    row.failed = false
    for _, name in ipairs(order) do
      local c = row.variants[name]
      if c then
        if c.error or c.pass == false then row.failed = true end
        if c.runs > 1 and c.passes > 0 and c.passes < c.runs then row.flaky = true end
        if c.pass ~= nil then judged = true end
        verdicts[#verdicts + 1] = c.runs > 0 and (c.passes / c.runs) or 0
        outputs[#outputs + 1] = c.output and check.normalize(c.output) or "\0error"
      end
    end
    local list = judged and verdicts or outputs
    row.disagree = false
    for i = 2, #list do if list[i] ~= list[1] then row.disagree = true end end
    row.flaky = row.flaky or false
  end
  rows.order = order
  return setmetatable(rows, Rows)
end

--- rows:filter{failures = true, disagreements = true} -> rows (a new list)
function Rows:filter(opts)
  opts = opts or {}
  local out = { order = self.order }
  for _, r in ipairs(self) do
    if (not opts.failures or r.failed) and (not opts.disagreements or r.disagree) then out[#out + 1] = r end
  end
  return setmetatable(out, Rows)
end

local function verdict_text(c)
  if c.error then return "ERROR" end
  if c.pass == nil then return "-" end
  if c.runs > 1 then return ("%d/%d"):format(c.passes, c.runs) end
  return c.pass and "pass" or "FAIL"
end
M.verdict_text = verdict_text

local function pad(s, w) return s .. (" "):rep(math.max(0, w - (utf8.len(s) or #s))) end

local function fmt_cost(v)
  if v == nil then return "cost ?" end
  if v == 0 then return "$0" end
  return ("$%.6f"):format(v)
end

--- rows:text{failures=, disagreements=, width = 48} -> string: a block
-- per case (input, expected, then a line per variant: verdict, answer,
-- reason, cost and latency).
function Rows:text(opts)
  opts = opts or {}
  local rows = (opts.failures or opts.disagreements) and self:filter(opts) or self
  local w = opts.width or 48
  local namew = 0
  for _, name in ipairs(self.order) do namew = math.max(namew, utf8.len(name) or #name) end
  local out = {}
  if #rows == 0 then
    return (#self == 0 and "no cases\n" or "no case matches the filter\n")
  end
  -- the answer column: as wide as the longest answer shown, at most w
  local aw = 8
  for _, row in ipairs(rows) do
    for _, c in pairs(row.variants) do
      local a = c.error and ("error: " .. c.error) or ('"' .. (shorten(c.output or "", w) or "") .. '"')
      aw = math.max(aw, math.min(utf8.len(a) or #a, w + 2))
    end
  end
  for _, row in ipairs(rows) do
    local flags = {}
    if row.failed then flags[#flags + 1] = "failed" end
    if row.disagree then flags[#flags + 1] = "variants disagree" end
    if row.flaky then flags[#flags + 1] = "flaky" end
    out[#out + 1] = ("case %s%s"):format(row.id, #flags > 0 and ("  [" .. table.concat(flags, ", ") .. "]") or "")
    out[#out + 1] = "  input:    " .. (row.input or "")
    if row.expected then out[#out + 1] = "  expected: " .. shorten(row.expected, 120) end
    for _, name in ipairs(self.order) do
      local c = row.variants[name]
      if c then
        local answer = c.error and ("error: " .. c.error) or ('"' .. (shorten(c.output or "", w) or "") .. '"')
        local line = ("  %s  %-5s %s"):format(pad(name, namew), verdict_text(c), pad(answer, aw))
        if c.reason and not c.error then line = line .. "  " .. shorten(c.reason, 60) end
        line = line .. ("  %s  %s"):format(fmt_cost(c.cost), c.latency_ms and ("%.0f ms"):format(c.latency_ms) or "")
        out[#out + 1] = (line:gsub("%s+$", ""))
      end
    end
    out[#out + 1] = ""
  end
  return table.concat(out, "\n")
end

function Rows:print(opts) io.stdout:write(self:text(opts)) end

--- rows:json() -> string: the rows as a JSON array (case tables left out)
function Rows:json()
  local T = require "llm.report_text"
  local list = T.array {}
  for i, row in ipairs(self) do
    local copy = {}
    for k, v in pairs(row) do if k ~= "case" then copy[k] = v end end
    list[i] = copy
  end
  return T.encode_json(list) .. "\n"
end

Rows.__tostring = function(r) return r:text() end

return M
