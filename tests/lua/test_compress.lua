-- llm.compress: every strategy on hand-checkable inputs (what is kept and
-- what is lost), exact stats, Unicode safety, idempotence, budget edge
-- cases, misuse; pipelines; and properties on the context-QA documents.
local T = ...
local C = llm.compress
local tokens = llm.tokens
local cjson = require "cjson"

local function n(s, model) return (tokens.count(s, model)) end

-- stats must be the real counts of input and output
local function check_stats(name, input, out, st, model)
  T.eq(st.strategy, name, "strategy")
  T.eq(st.tokens_before, n(input, model), name .. " tokens_before")
  T.eq(st.tokens_after, n(out, model), name .. " tokens_after")
  if st.tokens_after > 0 then
    T.near(st.ratio, st.tokens_before / st.tokens_after, 1e-12, name .. " ratio")
  end
end

local qa, docs
-- every context-QA case (120), or one case per document (24) when the
-- question does not matter
local function contexts(one_per_doc)
  if not qa then
    qa, docs = {}, {}
    local seen = {}
    local dir = os.getenv("LLMRUN_SOURCE_DIR") or "."
    for line in io.lines(dir .. "/examples/data/context_qa.jsonl") do
      local c = cjson.decode(line)
      qa[#qa + 1] = c
      if not seen[c.doc] then seen[c.doc] = true; docs[#docs + 1] = c end
    end
  end
  return one_per_doc and docs or qa
end

local function valid_utf8(s) return utf8.len(s) ~= nil end

-- ---- whitespace -------------------------------------------------------------------------

T.test("whitespace: spaces, tabs, line ends and blank runs; paragraphs and indentation kept", function()
  local input = "  Title  \r\n\r\nHello   world \t, again.\n\n\n\n\nNext\tpara\n    indented   text   \n\n"
  local out, st = C.whitespace(input)
  T.eq(out, "  Title\n\nHello world , again.\n\nNext para\n    indented text")
  check_stats("whitespace", input, out, st)
  T.ok(st.ratio > 1)
  T.eq((C.whitespace(input, { strip_indent = true })), "Title\n\nHello world , again.\n\nNext para\nindented text")
  T.eq((C.whitespace("a\n\n\nb", { max_blank = 0 })), "a\nb")
  T.eq((C.whitespace("a\n\n\n\nb", { max_blank = 2 })), "a\n\n\nb")
end)

T.test("whitespace: fenced code keeps its blank lines and inner spacing", function()
  local input = "Text  here\n```lua\nlocal  x = 1   \n\n\n\nreturn  x\n```\n\n\n\nAfter   it"
  T.eq((C.whitespace(input)), "Text here\n```lua\nlocal  x = 1\n\n\n\nreturn  x\n```\n\nAfter it")
end)

T.test("whitespace: Unicode spaces, zero-width spaces and BOM; other text untouched", function()
  local input = "\239\187\191caf\195\169\194\160au\226\128\139lait \226\128\131 \230\151\165\230\156\172 \240\159\152\128"
  local out = C.whitespace(input)
  T.eq(out, "caf\195\169 aulait \230\151\165\230\156\172 \240\159\152\128")
  T.ok(valid_utf8(out))
  -- joiners in emoji sequences stay
  local family = "\240\159\145\168\226\128\141\240\159\145\169"
  T.eq((C.whitespace(family)), family)
end)

T.test("whitespace: idempotent", function()
  local samples = { "a  b\n\n\n c \t\n", "```\n  x  \n\n\n```\n\n\ny", "\r\n\r\n x\r\n", "" }
  for _, c in ipairs(contexts(true)) do samples[#samples + 1] = c.context end
  for _, s in ipairs(samples) do
    local once = C.whitespace(s)
    T.eq((C.whitespace(once)), once)
  end
end)

-- ---- json --------------------------------------------------------------------------------

T.test("json: a whole document is minified token for token", function()
  local input = '{\n  "a": [1, 2.50, -0, 1e3, 1.5E-7],\n  "b": "x  y\\n \\u00e9",\n  "c": {"d": null, "e": true, "f": false},\n  "a": "dup"\n}\n'
  local out, st = C.json(input)
  T.eq(out, '{"a":[1,2.50,-0,1e3,1.5E-7],"b":"x  y\\n \\u00e9","c":{"d":null,"e":true,"f":false},"a":"dup"}')
  T.eq(st.json, "whole")
  check_stats("json", input, out, st)
  T.eq((C.json(out)), out) -- idempotent
  T.eq((C.json("[ ]")), "[]")
  T.eq((C.json('{ "k" : "caf\195\169 \230\151\165" }')), '{"k":"caf\195\169 \230\151\165"}')
end)

T.test("json: anything not strictly JSON is left alone", function()
  for _, s in ipairs { "{a: 1}", "[1, 2, ]", '{"a": 1} // note', "{'a': 1}", "[NaN]", "[01]", "[1.]",
    '{"a" 1}', '["tab\there"]', "[1] [2]", "{", '["\\x"]', "plain text" } do
    local out, st = C.json(s)
    T.eq(out, s, s)
    T.eq(st.json, "none", s)
  end
end)

T.test("json: blocks embedded in text", function()
  local input = table.concat({
    "Here is the config:",
    "```json",
    "{",
    '  "name": "demo",',
    '  "ports": [80, 443]',
    "}",
    "```",
    "And an inline one:",
    "  {",
    '    "ok": true',
    "  }",
    "[1] Smith, 2020.",
    "A {template} line.",
    "```",
    "{ not json }",
    "```",
  }, "\n")
  local out, st = C.json(input)
  T.eq(out, table.concat({
    "Here is the config:", "```json", '{"name":"demo","ports":[80,443]}', "```",
    "And an inline one:", '  {"ok":true}', "[1] Smith, 2020.", "A {template} line.",
    "```", "{ not json }", "```" }, "\n"))
  T.eq(st.json, "embedded")
  T.eq(st.blocks, 2)
  check_stats("json", input, out, st)
  T.eq((C.json(out)), out)
  T.eq((C.json(input, { embedded = false })), input)
  -- an unclosed fence: the rest is left as it is
  local open = "text\n```json\n{ \"a\": 1 }\n"
  T.eq((C.json(open)), open)
end)

T.test("json: deep nesting does not overflow", function()
  local deep = ("["):rep(100000) .. ("]"):rep(100000)
  local pretty = ("[ "):rep(100000) .. (" ]"):rep(100000)
  T.eq((C.json(pretty)), deep)
  local bad = ("["):rep(100000)
  T.eq((C.json(bad)), bad)
end)

-- ---- code --------------------------------------------------------------------------------

T.test("code: trailing spaces and blank runs; indentation and comments kept by default", function()
  local input = "def f(x):   \n\n\n\n    # add one\n    return x + 1  # inline\n\n\n"
  local out, st = C.code(input)
  T.eq(out, "def f(x):\n\n    # add one\n    return x + 1  # inline")
  T.eq(st.comments, "kept")
  check_stats("code", input, out, st)
  T.eq((C.code(out)), out)
end)

T.test("code: whole-line comments removed where unambiguous", function()
  local py = "#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\n# a comment\nimport os  # why\n    # indented comment\nx = 1  # noqa\n# type: ignore\n"
  local out, st = C.code(py, { lang = "python", comments = true })
  T.eq(out, "#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\nimport os  # why\nx = 1  # noqa\n# type: ignore")
  T.eq(st.comments, "removed")
  T.eq(st.comments_removed, 2)
  local js = "// header\nconst a = 1; // trailing\n  // inside\nfunction f() {}\n// eslint-disable-next-line\n"
  T.eq((C.code(js, { lang = "js", comments = true })), "const a = 1; // trailing\nfunction f() {}\n// eslint-disable-next-line")
  local lua = "-- note\n--[[ block\nstill block ]]\nlocal x = 1 -- trailing\n"
  -- "[[" in the text: a long string or block comment could hold a "--" line: all kept
  local out2, st2 = C.code(lua, { lang = "lua", comments = true })
  T.eq(out2, "-- note\n--[[ block\nstill block ]]\nlocal x = 1 -- trailing")
  T.ok(st2.comments:find("kept", 1, true))
  T.eq((C.code("-- note\nlocal x = 1\n", { lang = "lua", comments = true })), "local x = 1")
end)

T.test("code: comments kept when a string may span lines", function()
  local cases = {
    { "python", 'doc = """\n# not a comment\n"""\n# comment\n' },
    { "js", "const s = `\n// text\n`;\n// comment\n" },
    { "c", 'char *s = "abc\\\n// text\";\n// comment\n' },
    { "shell", "cat <<EOF\n# text\nEOF\n# comment\n" },
    { "rust", 'let s = "first\n// text\nlast";\n// comment\n' },
  }
  for _, c in ipairs(cases) do
    local out, st = C.code(c[2], { lang = c[1], comments = true })
    T.eq(out, (c[2]:gsub("\n$", "")), c[1])
    T.ok(st.comments:match("^kept: "), c[1] .. ": " .. st.comments)
    T.eq(st.comments_removed, 0)
  end
end)

T.test("code: misuse", function()
  T.err(function() C.code("x", { comments = true }) end, "needs lang")
  T.err(function() C.code("x", { lang = "cobol", comments = true }) end, "no comment rule")
  T.err(function() C.code("x", { max_blank = -1 }) end, "max_blank")
end)

-- ---- filler ------------------------------------------------------------------------------

T.test("filler: openers at sentence starts, next word capitalised", function()
  local input = "It is important to note that the office opens at nine. Please note that badges are required.\n"
    .. "- As mentioned earlier, it is important to note that lunch is at noon.\n"
    .. "Staff, please note that this stays. Please note that iOS 17 is required."
  local out, st = C.filler(input)
  T.eq(out, "The office opens at nine. Badges are required.\n"
    .. "- Lunch is at noon.\n"
    .. "Staff, please note that this stays. iOS 17 is required.")
  T.eq(st.removed.total, 5)
  T.eq(st.removed["please note that"], 2)
  check_stats("filler", input, out, st)
end)

T.test("filler: boilerplate sentences and wordy phrases", function()
  T.eq((C.filler("The answer is 4. I hope this helps!")), "The answer is 4.")
  T.eq((C.filler("Great question! The answer is 4.\nLet me know if you have any other questions.")),
    "The answer is 4.\n")
  T.eq((C.filler("In order to win, we train due to the fact that it works in order to learn.")),
    "To win, we train because it works to learn.")
  T.eq((C.filler("As an AI language model, I cannot browse.")), "I cannot browse.")
end)

T.test("filler: never inside quotes or code", function()
  local input = 'He said "Please note that it is closed." Basically, it works.\n'
    .. "Use `in order to` literally. \226\128\156It is important to note that X.\226\128\157\n"
    .. "```\nPlease note that code stays.\n```\nPlease note that prose goes."
  local out = C.filler(input)
  T.eq(out, 'He said "Please note that it is closed." It works.\n'
    .. "Use `in order to` literally. \226\128\156It is important to note that X.\226\128\157\n"
    .. "```\nPlease note that code stays.\n```\nProse goes.")
  -- an unclosed quote protects to the end of its paragraph
  T.eq((C.filler('"Please note that x. Please note that y.\n\nPlease note that z.')),
    '"Please note that x. Please note that y.\n\nZ.')
end)

T.test("filler: extra phrases, idempotence, Unicode", function()
  T.eq((C.filler("For what it's worth, the answer is 4.", { phrases = { "for what it's worth," } })),
    "The answer is 4.")
  T.err(function() C.filler("x", { phrases = { 1 } }) end, "phrases[1]")
  local s = "Please note that caf\195\169 opens. Needless to say, \230\151\165\230\156\172 is far."
  local out = C.filler(s)
  T.eq(out, "Caf\195\169 opens. \230\151\165\230\156\172 is far.")
  for _, c in ipairs(contexts(true)) do
    local once = C.filler(c.context)
    T.eq((C.filler(once)), once, c.id)
    T.ok(once:find(c.fact, 1, true), c.id .. ": the fact survives")
  end
end)

-- ---- dedupe -------------------------------------------------------------------------------

T.test("dedupe: sentences, short ones kept", function()
  local input = "A long sentence here. Another one follows. A long sentence here. Short. Short.\n\nA LONG  sentence here!"
  local out, st = C.dedupe(input)
  T.eq(out, "A long sentence here. Another one follows. Short. Short.")
  T.eq(st.removed, 2)
  T.eq(st.units, 6)
  check_stats("dedupe", input, out, st)
  T.eq((C.dedupe(input, { normalize = false })), "A long sentence here. Another one follows. Short. Short.\n\nA LONG  sentence here!")
  T.eq((C.dedupe(input, { min_chars = 1 })), "A long sentence here. Another one follows. Short.")
end)

T.test("dedupe: paragraphs and lines", function()
  local footer = "This document is confidential. Do not forward it."
  local input = "Intro text.\n\n" .. footer .. "\n\n## Part two\n\nMore text.\n\n" .. footer .. "\n\nEnd text here."
  T.eq((C.dedupe(input, { unit = "paragraph" })),
    "Intro text.\n\n" .. footer .. "\n\n## Part two\n\nMore text.\n\nEnd text here.")
  local lines = "alpha beta gamma\nsecond line here\nalpha beta gamma\n}\n}"
  T.eq((C.dedupe(lines, { unit = "line" })), "alpha beta gamma\nsecond line here\n}\n}")
  T.err(function() C.dedupe("x", { unit = "word" }) end, "unit must be")
end)

T.test("dedupe: CJK sentences, idempotence on the documents", function()
  local s = "\228\187\138\230\151\165\227\129\175\230\153\180\227\130\140\227\129\167\227\129\153\227\128\130"
    .. "\230\152\142\230\151\165\227\129\175\233\155\168\227\129\167\227\129\153\227\128\130"
    .. "\228\187\138\230\151\165\227\129\175\230\153\180\227\130\140\227\129\167\227\129\153\227\128\130"
  local out, st = C.dedupe(s)
  T.eq(st.removed, 1)
  T.eq(out, s:sub(1, #s - 24))
  T.ok(valid_utf8(out))
  for _, c in ipairs(contexts(true)) do
    local once = C.dedupe(c.context)
    T.eq((C.dedupe(once)), once, c.id)
    T.ok(once:find(c.fact, 1, true), c.id .. ": the fact survives")
  end
end)

-- ---- truncate ------------------------------------------------------------------------------

T.test("truncate: sides, exact budgets, stats", function()
  local text = "one two three four five six seven eight nine ten"
  local out, st = C.truncate(text, { budget = 4 })
  T.eq(out, "one two three four")
  T.eq(st.side, "tail")
  check_stats("truncate", text, out, st)
  T.eq((C.truncate(text, { budget = 4, side = "head" })), " seven eight nine ten")
  local mid = C.truncate(text, { budget = 5, side = "middle" })
  T.ok(mid:find("^one") and mid:find("ten$") and mid:find("\226\128\166", 1, true), mid)
  T.ok(n(mid) <= 5)
  local same, st2 = C.truncate(text, { budget = 1000 })
  T.eq(same, text)
  T.eq(st2.ratio, 1)
end)

T.test("truncate: budget 0, negative, fractions; Unicode never split", function()
  local out, st = C.truncate("hello world", { budget = 0 })
  T.eq(out, "")
  T.eq(st.ratio, math.huge)
  out, st = C.truncate("hello world", { budget = -3 })
  T.eq(out, "")
  T.ok(st.note:find("below 0"))
  T.eq((C.truncate("one two three", { budget = 2.9 })), "one two")
  local jp = ("\230\151\165\230\156\172\232\170\158\227\129\174\227\131\134\227\130\173\227\130\185\227\131\136"):rep(20)
  for b = 1, 30 do
    for _, side in ipairs { "tail", "head", "middle" } do
      local t = C.truncate(jp, { budget = b, side = side })
      T.ok(valid_utf8(t), "valid UTF-8 at " .. b .. " " .. side)
      T.ok(n(t) <= b)
    end
  end
end)

T.test("truncate: misuse", function()
  T.err(function() C.truncate("x", {}) end, "budget (tokens) is required")
  T.err(function() C.truncate("x", { budget = "10" }) end, "must be a number")
  T.err(function() C.truncate("x", { budget = 1, side = "left" }) end, "side must be")
  T.err(function() C.truncate(42, { budget = 1 }) end, "string expected")
  T.err(function() C.truncate("x", { budget = 1, bduget = 2 }) end, "unknown option 'bduget'")
end)

-- ---- select ----------------------------------------------------------------------------------

T.test("select: BM25 by hand, terms", function()
  local S = require "llm.compress_select"
  local scores = S.bm25({ { "x", "y" }, { "y", "y", "z" } }, { "x" })
  -- idf = ln(1 + 1.5/1.5) = ln 2; norm = 0.25 + 0.75 * 2 / 2.5 = 0.85
  T.near(scores[1], math.log(2) * 2.2 / (1 + 1.2 * 0.85), 1e-12)
  T.eq(scores[2], 0)
  T.eq(S.terms("What's the Lisbon office's ACCESS code?"), { "lisbon", "office", "access", "code" })
  T.eq(S.terms("offices glass status \226\128\148 caf\195\169s"), { "office", "glass", "statu", "caf\195\169s" })
  T.eq(S.terms("\230\157\177\228\186\172\227\129\174\229\164\169\230\176\151\227\128\130"),
    { "\230\157\177", "\228\186\172", "\227\129\174", "\229\164\169", "\230\176\151" })
end)

local doc = table.concat({
  "Office handbook.",
  "",
  "The kitchen is cleaned every evening by the night staff. The printer on the second floor accepts badges.",
  "The access code for the Lisbon office is 4471. The access code for the Porto office is 9913.",
  "",
  "Visitors must sign in at the front desk. The Lisbon office closes early on Fridays in summer.",
}, "\n")

T.test("select: the best sentences within the budget, in order", function()
  local q = "What is the access code for the Lisbon office?"
  local fact = "The access code for the Lisbon office is 4471."
  local out, st = C.select(doc, { query = q, budget = n(fact) })
  T.eq(out, fact)
  T.eq(st.kept, 1)
  T.eq(st.units, 7)
  check_stats("select", doc, out, st)
  -- two sentences: the Porto one shares three terms (access, code,
  -- office), the "Lisbon office closes" one two; in the text's order
  local porto = "The access code for the Porto office is 9913."
  out = C.select(doc, { query = q, budget = n(fact) + n(porto) + 1 })
  T.eq(out, fact .. " " .. porto)
  -- with the title
  out = C.select(doc, { query = q, budget = n(fact) + 6, keep_first = true })
  T.eq(out, "Office handbook.\n\n" .. fact)
  -- ratio: a budget of tokens_before / R
  local r, st2 = C.select(doc, { query = q, ratio = 2 })
  T.ok(st2.tokens_after <= st2.tokens_before // 2)
  T.ok(r:find(fact, 1, true))
  -- the text fits: unchanged
  local same, st3 = C.select(doc, { query = q, budget = 10000 })
  T.eq(same, doc)
  T.eq(st3.ratio, 1)
end)

T.test("select: units, only_matching, duplicates skipped", function()
  local p2 = "The kitchen is cleaned every evening by the night staff. The printer on the second floor accepts badges.\n"
    .. "The access code for the Lisbon office is 4471. The access code for the Porto office is 9913."
  local out = C.select(doc, { query = "access code Lisbon", budget = n(p2) + 1, unit = "paragraph" })
  T.eq(out, p2)
  out = C.select(doc, { query = "Lisbon", budget = n(doc) - 1, only_matching = true })
  T.eq(out, "The access code for the Lisbon office is 4471.\n\nThe Lisbon office closes early on Fridays in summer.")
  local rep = "Lisbon is sunny today. Lisbon is sunny today. Porto is rainy."
  T.eq((C.select(rep, { query = "Lisbon weather", budget = 12 })), "Lisbon is sunny today. Porto is rainy.")
  local chunks = C.select(doc, { query = "Porto access code", budget = 30, unit = "chunk", chunk_tokens = 25 })
  T.ok(chunks:find("9913", 1, true), chunks)
end)

T.test("select: budget edge cases are reported, never raised", function()
  local q = "What is the access code for the Lisbon office?"
  -- smaller than the best sentence: its beginning
  local out, st = C.select(doc, { query = q, budget = 5 })
  T.eq(out, (tokens.truncate("The access code for the Lisbon office is 4471.", 5)))
  T.ok(st.truncated)
  T.ok(st.note:find("smaller than the best sentence", 1, true), st.note)
  T.ok(st.tokens_after <= 5)
  out, st = C.select(doc, { query = q, budget = 0 })
  T.eq(out, "")
  T.ok(st.note:find("budget 0", 1, true))
  out, st = C.select(doc, { query = q, budget = -40 })
  T.eq(out, "")
  T.ok(st.note:find("below 0", 1, true))
  -- no usable query terms: the first sentences
  out, st = C.select(doc, { query = "what is the?", budget = 8 })
  T.eq(out, "Office handbook.")
  T.ok(st.note:find("no terms", 1, true))
  out, st = C.select(doc, { query = "zebra", budget = 8 })
  T.eq(out, "Office handbook.")
  T.ok(st.note:find("no unit shares", 1, true))
  out, st = C.select("   \n\n  ", { query = "x", budget = 1 })
  T.eq(out, "")
  out = C.select("", { query = "x", budget = 5 })
  T.eq(out, "")
end)

T.test("select: misuse", function()
  T.err(function() C.select(doc, { budget = 10 }) end, "query")
  T.err(function() C.select(doc, { query = "x" }) end, "budget (tokens) or ratio")
  T.err(function() C.select(doc, { query = "x", ratio = 0 }) end, "ratio must be")
  T.err(function() C.select(doc, { query = "x", budget = 10, unit = "word" }) end, "unit must be")
  T.err(function() C.select(doc, { query = 5, budget = 10 }) end, "must be a string")
  T.err(function() C.select(doc, "budget") end, "table of options")
end)

T.test("select on the context-QA documents: always within budget, the fact kept at 4x", function()
  for _, c in ipairs(contexts()) do
    for _, b in ipairs { 40, 150, 400 } do
      local out, st = C.select(c.context, { query = c.question, budget = b })
      T.ok(st.tokens_after <= b, c.id)
      T.eq(st.tokens_after, n(out), c.id)
      T.ok(valid_utf8(out))
    end
    local out, st = C.select(c.context, { query = c.question, ratio = 4 })
    T.ok(st.ratio >= 4, c.id)
    T.ok(out:find(c.fact, 1, true), c.id .. ": " .. c.question)
  end
end)

-- ---- model encodings ------------------------------------------------------------------------

T.test("opts.model picks the encoding", function()
  local text = "Hello   world,   how   are   you?"
  local _, a = C.whitespace(text, { model = "gpt-4" })
  check_stats("whitespace", text, (C.whitespace(text)), a, "gpt-4")
  local _, b = C.whitespace(text, { model = "gpt-4o" })
  T.eq(b.tokens_before, n(text, "o200k_base"))
  local out, st = C.truncate(("word "):rep(50), { budget = 7, model = "cl100k_base" })
  T.eq(n(out, "cl100k_base"), st.tokens_after)
  T.ok(st.tokens_after <= 7)
end)

-- ---- pipelines -------------------------------------------------------------------------------

T.test("pipeline: steps in order, stats per step, call options reach the steps", function()
  local c = contexts()[1]
  local p = C.pipeline { "whitespace", "filler", { "dedupe", unit = "sentence" }, { "select", ratio = 2 } }
  local out, st = p(c.context, { query = c.question })
  T.eq(st.strategy, "pipeline")
  T.eq(#st.steps, 4)
  T.eq(st.steps[1].tokens_before, n(c.context))
  for i = 2, 4 do T.eq(st.steps[i].tokens_before, st.steps[i - 1].tokens_after) end
  T.eq(st.tokens_after, n(out))
  T.eq(st.tokens_before, n(c.context))
  T.near(st.ratio, st.tokens_before / st.tokens_after, 1e-12)
  T.eq(st.steps[4].strategy, "select")
  T.ok(out:find(c.fact, 1, true))
end)

T.test("pipeline: functions, named steps, registered strategies", function()
  local upper = function(text) return text:upper() end
  local p = C.pipeline { upper, { function(t, o) return t .. (o.suffix or "!") end, suffix = "?", name = "suffix" } }
  local out, st = p("hi there")
  T.eq(out, "HI THERE?")
  T.eq(st.steps[1].strategy, "step 1")
  T.eq(st.steps[2].strategy, "suffix")
  T.eq(st.steps[2].tokens_before, n("HI THERE"))
  C.register("shout", function(text) return text:upper(), { strategy = "shout", tokens_before = 0, tokens_after = 0 } end)
  T.eq((C.pipeline { "shout" }("abc")), "ABC")
  T.err(function() C.register("select", upper) end, "built-in")
  T.ok(C.get("shout"))
end)

T.test("pipeline: misuse raises early", function()
  T.err(function() C.pipeline {} end, "non-empty list")
  T.err(function() C.pipeline { "squash" } end, "unknown strategy 'squash'")
  T.err(function() C.pipeline { { "select", budgt = 3 } } end, "unknown option 'budgt'")
  T.err(function() C.pipeline { 42 } end, "step 1 must be")
  local p = C.pipeline { "whitespace" }
  T.err(function() p("x", { budget = 3 }) end, "unknown option 'budget'")
  T.err(function() p(nil) end, "string expected")
  local bad = C.pipeline { function() return 1 end }
  T.err(function() bad("x") end, "not a string")
end)
