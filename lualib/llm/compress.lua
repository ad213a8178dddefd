-- llm.compress: make prompts shorter on the CPU, and say by how much.
--
--   local text, st = llm.compress.whitespace(doc)
--   local text, st = llm.compress.select(doc, { query = q, budget = 400 })
--   local squeeze = llm.compress.pipeline { "whitespace", "filler", { "dedupe", unit = "sentence" } }
--   local text, st = squeeze(doc, { model = "gpt-4o" })
--   print(st.tokens_before, st.tokens_after, st.ratio)
--
-- Every strategy is fn(text [, opts]) -> text, stats, with stats =
-- {strategy=, tokens_before=, tokens_after=, ratio = before/after, ...}
-- counted with llm.tokens (opts.model picks the encoding; default
-- o200k_base). ratio is 1 for unchanged text and math.huge when
-- everything was removed. Options every strategy takes: model, query.
-- Misuse (a text that is not a string, an unknown option, an option of
-- the wrong type) raises; runtime data never does: a budget below zero
-- counts as 0, a budget smaller than one sentence keeps part of one, and
-- stats.note says what happened.
--
-- What each strategy can lose is in its comment below and in the README
-- ("Prompt compression").
local tokens = require "llm.tokens"
local units = require "llm.compress_units"

local M = {}

-- ---- options and stats ------------------------------------------------------------

local common = { model = "string", query = "string" }

-- name -> {option = type}; "integer" and "number" are checked as numbers
local options = {
  whitespace = { strip_indent = "boolean", max_blank = "integer" },
  json = { embedded = "boolean" },
  code = { lang = "string", comments = "boolean", max_blank = "integer" },
  filler = { phrases = "table" },
  dedupe = { unit = "string", normalize = "boolean", min_chars = "integer" },
  truncate = { budget = "number", side = "string", marker = "string" },
  select = { budget = "number", ratio = "number", unit = "string", chunk_tokens = "integer",
             keep_first = "boolean", only_matching = "boolean", k1 = "number", b = "number" },
}
M.options = options

local function fail(name, msg)
  error("llm.compress." .. name .. ": " .. msg, 4)
end

local function check(name, text, opts)
  if type(text) ~= "string" then
    error(("bad argument #1 to 'llm.compress.%s' (string expected, got %s)"):format(name, type(text)), 3)
  end
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("bad argument #2 to 'llm.compress.%s' (table of options expected, got %s)")
      :format(name, type(opts)), 3)
  end
  local allowed = options[name] or {}
  for k, v in pairs(opts) do
    local want = allowed[k] or common[k]
    if not want then fail(name, "unknown option '" .. tostring(k) .. "'") end
    local ok
    if want == "integer" then ok = math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v))
    else ok = type(v) == want end
    if not ok then fail(name, ("option '%s' must be a %s, got %s"):format(k, want, type(v))) end
  end
  return opts
end

local function count(text, model)
  return (tokens.count(text, model))
end

-- The stats table. extra fields are copied in; before may be given.
local function stats(name, before_text, after_text, opts, extra, before)
  before = before or count(before_text, opts.model)
  local after = after_text == before_text and before or count(after_text, opts.model)
  local s = {
    strategy = name, tokens_before = before, tokens_after = after,
    ratio = after > 0 and before / after or (before == 0 and 1 or math.huge),
  }
  if extra then for k, v in pairs(extra) do s[k] = v end end
  return s
end
M.stats = function(name, before_text, after_text, opts)
  return stats(name, before_text, after_text, opts or {})
end

-- ---- whitespace ------------------------------------------------------------------------

-- Unicode spaces that become an ASCII space: no-break space U+00A0,
-- U+2000-U+200A, U+202F, U+205F, U+3000. Removed: zero-width space
-- U+200B and the byte-order mark U+FEFF. Joiners (U+200C, U+200D) stay:
-- emoji sequences and some scripts need them.
local function unicode_spaces(s)
  s = s:gsub("\226\128\139", ""):gsub("\239\187\191", "")
  s = s:gsub("\194\160", " "):gsub("\226\128[\128-\138\175]", " ")
  s = s:gsub("\226\129\159", " "):gsub("\227\128\128", " ")
  return s
end

local function is_fence(line)
  return line:match("^%s*```") or line:match("^%s*~~~")
end

--- whitespace(text, {strip_indent=false, max_blank=1}): line ends to
-- "\n"; Unicode spaces to " " (zero-width spaces and BOMs removed); runs
-- of spaces and tabs inside a line to one space; spaces at line ends
-- removed; at most max_blank blank lines in a row (1 keeps paragraph
-- breaks); blank lines at the start and end removed. Indentation is kept
-- (its tabs and spaces as they are) unless strip_indent. Inside fenced
-- code blocks (``` or ~~~) only spaces at line ends go.
-- Can lose: alignment inside lines (ASCII tables, aligned comments),
-- indentation with strip_indent (nested lists, indented code), the
-- difference between one and several blank lines, Markdown's "two
-- spaces at the end = line break", a final newline.
function M.whitespace(text, opts)
  opts = check("whitespace", text, opts)
  local max_blank = opts.max_blank or 1
  if max_blank < 0 then fail("whitespace", "max_blank must be >= 0") end
  local s = unicode_spaces((text:gsub("\r\n?", "\n")))
  local out, blank, in_fence = {}, 0, false
  for line in (s .. "\n"):gmatch("([^\n]*)\n") do
    if is_fence(line) then in_fence = not in_fence; blank = 0 end
    line = line:gsub("[ \t\f\v]+$", "")
    if in_fence and not is_fence(line) then
      out[#out + 1] = line
    elseif line == "" then
      blank = blank + 1
      if blank <= max_blank and #out > 0 then out[#out + 1] = "" end
    else
      blank = 0
      local indent, rest = line:match("^([ \t\f\v]*)(.*)$")
      rest = rest:gsub("[ \t\f\v]+", " ")
      out[#out + 1] = (opts.strip_indent and "" or indent) .. rest
    end
  end
  while #out > 0 and out[#out] == "" do out[#out] = nil end
  local result = table.concat(out, "\n")
  return result, stats("whitespace", text, result, opts)
end

-- ---- json ----------------------------------------------------------------------------------

--- json(text, {embedded=true}): when the whole text is one JSON value,
-- its minified form (whitespace between tokens removed; strings, numbers,
-- key order and escapes byte for byte as written). Otherwise, unless
-- embedded == false, JSON inside the text is minified where that is
-- safe: the body of a fenced code block that is JSON as a whole, and an
-- object or array that starts a line and ends at the end of a line.
-- Anything that is not strictly valid JSON (comments, trailing commas,
-- NaN) is left alone. Can lose: pretty-printing only (a model reads the
-- minified form as well; a human reads it worse). stats.json = "whole",
-- "embedded" (stats.blocks = how many) or "none".
function M.json(text, opts)
  opts = check("json", text, opts)
  local J = require "llm.compress_json"
  local whole = text:find("^%s*[{%[]") and J.whole(text)
  if whole then return whole, stats("json", text, whole, opts, { json = "whole" }) end
  if opts.embedded == false then return text, stats("json", text, text, opts, { json = "none" }) end
  local out, n = J.embedded(text)
  return out, stats("json", text, out, opts, { json = n > 0 and "embedded" or "none", blocks = n })
end

-- ---- code ------------------------------------------------------------------------------------

local comment_markers = {
  python = "#", py = "#", shell = "#", sh = "#", bash = "#", zsh = "#", ruby = "#", rb = "#",
  perl = "#", r = "#", toml = "#", yaml = "#", yml = "#",
  c = "//", cpp = "//", ["c++"] = "//", java = "//", javascript = "//", js = "//",
  typescript = "//", ts = "//", go = "//", rust = "//", csharp = "//", ["c#"] = "//",
  kotlin = "//", swift = "//", scala = "//",
  lua = "--", sql = "--", haskell = "--",
}

-- Texts where a line that looks like a comment may be inside a string
-- that spans lines: comments are then kept. Plain substrings per language.
local multiline_openers = {
  python = { '"""', "'''" }, py = { '"""', "'''" }, toml = { '"""', "'''" },
  javascript = { "`" }, js = { "`" }, typescript = { "`" }, ts = { "`" }, go = { "`" },
  cpp = { 'R"' }, ["c++"] = { 'R"' }, rust = { 'r"', 'r#"' },
  java = { '"""' }, kotlin = { '"""' }, swift = { '"""' }, scala = { '"""' },
  csharp = { '"""', '@"' }, ["c#"] = { '"""', '@"' },
  lua = { "[[", "[=" }, ruby = { "<<", "%q", "%Q", "%(" }, rb = { "<<", "%q", "%Q", "%(" },
  shell = { "<<" }, sh = { "<<" }, bash = { "<<" }, zsh = { "<<" }, perl = { "<<", "q{", "qq{" },
}
-- Languages whose single-quoted strings may span lines.
local single_quote_multiline = { shell = true, sh = true, bash = true, zsh = true, ruby = true,
  rb = true, perl = true, r = true, sql = true }

-- Comments that tools read: never removed.
local pragma_words = { "noqa", "type:", "pylint", "pragma", "eslint", "@ts-", "prettier-ignore",
  "nolint", "NOLINT", "go:", "+build", "SPDX-License", "@license", "@preserve", "luacheck",
  "shellcheck", "clang-format", "istanbul", "jshint", "fmt:", "isort:", "mypy:", "rubocop",
  "frozen_string_literal", "region", "-*-", "coding:", "coding=", "vim:", "@flow", "@jsx" }

local function is_pragma(line)
  for _, w in ipairs(pragma_words) do
    if line:find(w, 1, true) then return true end
  end
  return false
end

-- Why comments cannot be removed safely from this text, or nil.
local function comment_guard(text, lang)
  for _, o in ipairs(multiline_openers[lang] or {}) do
    if text:find(o, 1, true) then return "the text has " .. o .. " (a string may span lines)" end
  end
  for line in text:gmatch("[^\n]+") do
    if line:find("\\%s*$") then return "a line ends with a backslash (a continued line)" end
    local plain = line:gsub("\\.", "")
    local _, dq = plain:gsub('"', "")
    if dq % 2 == 1 then return 'a line has an odd number of " (a string may span lines)' end
    if single_quote_multiline[lang] then
      local _, sq = plain:gsub("'", "")
      if sq % 2 == 1 then return "a line has an odd number of ' (a string may span lines)" end
    end
  end
  return nil
end

--- code(text, {lang=, comments=false, max_blank=1}): line ends to "\n",
-- spaces and tabs at line ends removed, at most max_blank blank lines in
-- a row, blank lines at the start and end removed; indentation untouched.
-- With comments = true (lang required): whole-line comments removed,
-- that is, lines whose first non-blank characters are the language's
-- line-comment marker (# for python, shell, ruby, perl, r, toml, yaml;
-- // for c, cpp, java, js, ts, go, rust, c#, kotlin, swift, scala; --
-- for lua, sql, haskell), except a first-line "#!", Lua's "--[" block
-- openers and pragmas that tools read (noqa, type:, eslint, go:, SPDX,
-- @license, -*- ...). Comments are kept entirely (stats.comments says
-- why) when the text might hold a string spanning lines, where such a
-- line would be text: a multi-line string opener of the language (""" '''
-- ` R" [[ heredoc << ...), a line ending in a backslash, or a line with an
-- odd number of double quotes (or single quotes for shell, ruby, perl, r,
-- sql). Comments after code on the same line are never touched.
-- Can lose: trailing spaces and blank-line runs also inside multi-line
-- string literals (changing those strings' values), and with comments:
-- the comments' content (explanations, commented-out code, license text
-- without an SPDX or @license tag, doc comments such as /// or #').
function M.code(text, opts)
  opts = check("code", text, opts)
  local max_blank = opts.max_blank or 1
  if max_blank < 0 then fail("code", "max_blank must be >= 0") end
  local marker, why
  if opts.comments then
    if not opts.lang then fail("code", "comments = true needs lang (\"python\", \"js\", \"lua\"...)") end
    marker = comment_markers[opts.lang:lower()]
    if not marker then fail("code", "no comment rule for lang '" .. opts.lang .. "'") end
    why = comment_guard(text, opts.lang:lower())
    if why then marker = nil end
  end
  local s = text:gsub("\r\n?", "\n")
  local out, blank, removed, first = {}, 0, 0, true
  for line in (s .. "\n"):gmatch("([^\n]*)\n") do
    line = line:gsub("[ \t\f\v]+$", "")
    local body = line:match("^[ \t]*(.*)$")
    local drop = false
    if marker and body:sub(1, #marker) == marker and not is_pragma(body)
       and not (first and body:sub(1, 2) == "#!")
       and not (marker == "--" and body:sub(1, 3) == "--[") then
      drop = true
      removed = removed + 1
    end
    first = false
    if not drop then
      if line == "" then
        blank = blank + 1
        if blank <= max_blank and #out > 0 then out[#out + 1] = "" end
      else
        blank = 0
        out[#out + 1] = line
      end
    end
  end
  while #out > 0 and out[#out] == "" do out[#out] = nil end
  local result = table.concat(out, "\n")
  local extra = { comments = not opts.comments and "kept" or (why and ("kept: " .. why)) or "removed",
                  comments_removed = removed }
  return result, stats("code", text, result, opts, extra)
end

-- ---- filler ---------------------------------------------------------------------------------

--- filler(text, {phrases = {extra openers}}): removes filler phrases
-- (lists in llm.compress_filler: openers such as "It is important to
-- note that", "Please note that", "As mentioned earlier,", "Basically,",
-- "As an AI language model," at a sentence start, the next word
-- capitalised; chat boilerplate sentences such as "I hope this helps!";
-- wordy phrases shortened anywhere: "in order to" -> "to", "due to the
-- fact that" -> "because"). Never inside fenced or inline code or double
-- quotes. stats.removed = {total=, [phrase] = count}.
-- Can lose: hedges and emphasis ("In general," "Obviously,"), the tone
-- of a message, and text in single quotes (not protected); a rewrite can
-- misfire on the rare literal use ("listed in order to the right").
function M.filler(text, opts)
  opts = check("filler", text, opts)
  local extra = opts.phrases
  if extra then
    for i, p in ipairs(extra) do
      if type(p) ~= "string" or p == "" then fail("filler", ("phrases[%d] must be a non-empty string"):format(i)) end
    end
  end
  local out, removed = require("llm.compress_filler").remove(text, extra)
  return out, stats("filler", text, out, opts, { removed = removed })
end

-- ---- dedupe ---------------------------------------------------------------------------------

local unit_names = { sentence = true, paragraph = true, line = true }

local function dedupe_key(s, normalize)
  if not normalize then return s end
  return (s:lower():gsub("%s+", " "):gsub("[%s%.!?;:,]+$", ""))
end

--- dedupe(text, {unit="sentence"|"paragraph"|"line", normalize=true,
-- min_chars=12}): removes every later copy of a unit already seen. With
-- normalize, copies that differ in case, spacing or final punctuation
-- count as the same. Units shorter than min_chars (after trimming) are
-- always kept: short lines such as "}" or "end" or "Yes." repeat for a
-- reason. Whitespace around the removed units goes with them.
-- Can lose: a repetition that carries meaning (the same sentence under
-- two headings saying different things in context, a refrain, a
-- repeated step in a procedure); with unit = "line" on code, repeated
-- statements (do not use it on code).
function M.dedupe(text, opts)
  opts = check("dedupe", text, opts)
  local unit = opts.unit or "sentence"
  if not unit_names[unit] then fail("dedupe", "unit must be \"sentence\", \"paragraph\" or \"line\"") end
  local normalize = opts.normalize ~= false
  local min_chars = opts.min_chars or 12
  local us = units.split(text, unit)
  local seen, keep, removed = {}, {}, 0
  for i, u in ipairs(us) do
    local s = text:sub(u.s, u.e)
    local key = dedupe_key(s, normalize)
    if #s < min_chars then
      keep[i] = true
    elseif seen[key] then
      removed = removed + 1
    else
      seen[key] = true
      keep[i] = true
    end
  end
  local out = removed > 0 and units.join(text, us, keep) or text
  return out, stats("dedupe", text, out, opts, { unit = unit, units = #us, removed = removed })
end

-- ---- budgets -------------------------------------------------------------------------------------

-- A token budget from runtime data: a number; below 0 counts as 0 (with
-- a note); fractions round down.
local function budget_of(name, v, total, ratio)
  local note
  local b
  if v ~= nil then
    if v ~= v then fail(name, "budget is NaN") end
    b = v == math.huge and total or math.floor(v)
    if b < 0 then
      note = ("budget %s is below 0: treated as 0"):format(tostring(v))
      b = 0
    end
  end
  if ratio ~= nil then
    if ratio ~= ratio or ratio <= 0 then fail(name, "ratio must be a number > 0") end
    local r = math.floor(total / math.max(ratio, 1))
    b = b and math.min(b, r) or r
  end
  return b, note
end

--- truncate(text, {budget=N, side="tail"|"head"|"middle", marker="…"}):
-- at most N tokens, cut at token boundaries (never inside a UTF-8
-- character) by llm.tokens.truncate. side says where the cut is, as in
-- llm.tokens.truncate: "tail" (default) cuts the end and keeps the
-- beginning, "head" cuts the beginning and keeps the end, "middle" keeps
-- both ends joined by marker. Can lose: everything past the budget on
-- the cut side, whatever it holds; the cut may fall inside a sentence.
function M.truncate(text, opts)
  opts = check("truncate", text, opts)
  if opts.budget == nil then fail("truncate", "budget (tokens) is required") end
  local side = opts.side or "tail"
  if side ~= "tail" and side ~= "head" and side ~= "middle" then
    fail("truncate", "side must be \"tail\", \"head\" or \"middle\"")
  end
  local before = count(text, opts.model)
  local budget, note = budget_of("truncate", opts.budget, before)
  local out, n = tokens.truncate(text, budget, opts.model, { side = side, marker = opts.marker })
  local s = stats("truncate", text, out, opts, { side = side, budget = budget, note = note }, before)
  s.tokens_after = n
  s.ratio = n > 0 and before / n or (before == 0 and 1 or math.huge)
  return out, s
end

-- ---- select ---------------------------------------------------------------------------------------

local select_units = { sentence = true, paragraph = true, line = true, chunk = true }

--- select(text, {query=, budget=N | ratio=R, unit="sentence", chunk_tokens=100,
-- keep_first=false, only_matching=false, k1=1.2, b=0.75}): splits the text
-- into units (sentences; paragraphs; lines; or chunks of whole sentences
-- up to chunk_tokens), ranks them against the query with BM25
-- (llm.compress_select documents the formula and the tokenization), and
-- keeps the best-ranked units that fit in the budget (ratio R: a budget
-- of tokens_before / R; both given: the smaller), in their original
-- order. keep_first always keeps the first unit (a title) when it fits;
-- only_matching never fills the budget with units that share no term
-- with the query. A text within the budget is returned unchanged.
-- Edge cases (runtime data, never an error; stats.note says which):
-- budget 0 (or below) -> ""; a query with no usable terms, or none in
-- the text -> the first units that fit; the best unit larger than the
-- whole budget -> its first `budget` tokens only (stats.truncated). The
-- budget counts the returned text only, not the question: for a budget
-- on the whole prompt, subtract the question's tokens first.
-- Can lose: any unit ranked below the cut: facts phrased in other words
-- than the query (synonyms, pronouns: "It opens at nine" after the
-- sentence naming "it"), context that makes a kept sentence mean what
-- it means, and the order cues between kept units.
function M.select(text, opts)
  opts = check("select", text, opts)
  if opts.query == nil then fail("select", "query (the question to select for) is required") end
  if opts.budget == nil and opts.ratio == nil then fail("select", "budget (tokens) or ratio is required") end
  local unit = opts.unit or "sentence"
  if not select_units[unit] then
    fail("select", "unit must be \"sentence\", \"paragraph\", \"line\" or \"chunk\"")
  end
  if opts.chunk_tokens ~= nil and opts.chunk_tokens < 1 then fail("select", "chunk_tokens must be >= 1") end
  local before = count(text, opts.model)
  local budget, note = budget_of("select", opts.budget, before, opts.ratio)
  local o = {
    query = opts.query, budget = budget, unit = unit, chunk_tokens = opts.chunk_tokens or 100,
    keep_first = opts.keep_first, only_matching = opts.only_matching, k1 = opts.k1, b = opts.b,
  }
  local model = opts.model
  local out, info = require("llm.compress_select").select(text, o,
    function(s) return count(s, model) end,
    function(s, n) return tokens.truncate(s, n, model) end,
    before)
  if note then info.note = info.note and (note .. "; " .. info.note) or note end
  local after = info.tokens_after
  info.tokens_after = nil
  local s = stats("select", text, out, opts, info, before)
  if after then s.tokens_after = after; s.ratio = after > 0 and before / after or math.huge end
  return out, s
end

-- ---- registry and pipelines ------------------------------------------------------------------

local registry = {
  whitespace = M.whitespace, json = M.json, code = M.code, filler = M.filler,
  dedupe = M.dedupe, truncate = M.truncate, select = M.select,
}

--- names() -> the strategy names, sorted.
function M.names()
  local out = {}
  for k in pairs(registry) do out[#out + 1] = k end
  table.sort(out)
  return out
end

--- get(name) -> the strategy function, or nil.
function M.get(name) return registry[name] end

--- register(name, fn): adds a strategy usable by name in pipelines.
-- fn(text, opts) -> text [, stats]; opts holds the step's options plus
-- model and query. Replacing a built-in strategy is refused.
function M.register(name, fn)
  if type(name) ~= "string" or name == "" then error("bad argument #1 to 'register' (name expected)", 2) end
  if type(fn) ~= "function" then error("bad argument #2 to 'register' (function expected)", 2) end
  if options[name] then error("llm.compress.register: '" .. name .. "' is a built-in strategy", 2) end
  registry[name] = fn
end

local function resolve_step(i, st)
  local name, fn, sopts = nil, nil, {}
  if type(st) == "string" then
    name, fn = st, registry[st]
  elseif type(st) == "function" then
    name, fn = "step " .. i, st
  elseif type(st) == "table" then
    local head = st[1]
    if type(head) == "function" then name, fn = "step " .. i, head
    elseif type(head) == "string" then name, fn = head, registry[head]
    else error(("llm.compress.pipeline: step %d: {name or function, options...} expected"):format(i), 3) end
    for k, v in pairs(st) do if k ~= 1 then sopts[k] = v end end
    if type(st.name) == "string" and type(head) == "function" then name = st.name; sopts.name = nil end
  else
    error(("llm.compress.pipeline: step %d must be a name, a function or a table, got %s"):format(i, type(st)), 3)
  end
  if not fn then
    error(("llm.compress.pipeline: step %d: unknown strategy '%s' (known: %s)")
      :format(i, tostring(name), table.concat(M.names(), ", ")), 3)
  end
  -- built-ins check their option names now, not at the first call
  if options[name] then
    for k in pairs(sopts) do
      if not options[name][k] and not common[k] then
        error(("llm.compress.pipeline: step %d (%s): unknown option '%s'"):format(i, name, tostring(k)), 3)
      end
    end
  end
  return { name = name, fn = fn, opts = sopts }
end

--- pipeline{step, ...} -> function(text [, {model=, query=}]) -> text, stats
-- A step is a strategy name, a function fn(text, opts) -> text [, stats],
-- or a table {name_or_function, option = value...} (a function step may
-- be named with name = "..."). Steps run in order, each on the previous
-- one's output, with the call's model and query merged into the step's
-- options (the step's own win). stats: strategy = "pipeline", the
-- counts of the whole, and steps = the list of each step's stats (made
-- for a step that returns none).
function M.pipeline(steps)
  if type(steps) ~= "table" or #steps == 0 then
    error("bad argument #1 to 'llm.compress.pipeline' (non-empty list of steps expected)", 2)
  end
  local resolved = {}
  for i, st in ipairs(steps) do resolved[i] = resolve_step(i, st) end
  return function(text, opts)
    if type(text) ~= "string" then
      error("bad argument #1 to pipeline (string expected, got " .. type(text) .. ")", 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
      error("bad argument #2 to pipeline (table of options expected, got " .. type(opts) .. ")", 2)
    end
    opts = opts or {}
    for k, v in pairs(opts) do
      if not common[k] then
        error(("pipeline: unknown option '%s' (a pipeline call takes model and query; "
          .. "give other options to the steps)"):format(tostring(k)), 2)
      end
      if type(v) ~= common[k] then error(("pipeline: option '%s' must be a %s"):format(k, common[k]), 2) end
    end
    local cur, all = text, {}
    for i, st in ipairs(resolved) do
      local o = {}
      for k, v in pairs(opts) do o[k] = v end
      for k, v in pairs(st.opts) do o[k] = v end
      local out, s = st.fn(cur, o)
      if type(out) ~= "string" then
        error(("pipeline: step %d (%s) returned %s, not a string"):format(i, st.name, type(out)), 2)
      end
      if type(s) ~= "table" then s = stats(st.name, cur, out, opts) end
      all[i] = s
      cur = out
    end
    local before = all[1].tokens_before
    local after = all[#all].tokens_after
    local s = stats("pipeline", text, cur, opts, { steps = all }, before)
    if after then s.tokens_after = after; s.ratio = after > 0 and before / after or math.huge end
    return cur, s
  end
end

return M
