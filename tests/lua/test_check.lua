-- llm.check: normalization, each check's verdicts and reasons, the JSON
-- schema subset, the judge's verdict reader (table-driven over the shapes
-- judges answer in) and the judge against a scripted server, checks as a
-- cascade's accept.
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local C = llm.check
local J = require "llm.check_judge"

local function resp(text) return require("llm.response").new { text = text } end

T.test("normalize: case, space, punctuation, number formats", function()
  local n = C.normalize
  T.eq(n("  The  Answer:\tParis! "), "the answer paris")
  T.eq(n("1,000"), "1000")
  T.eq(n("1,234,567.50"), "1234567.5")
  T.eq(n("+3"), "3")
  T.eq(n("3.0"), "3")
  T.eq(n("-0.50"), "-0.5")
  T.eq(n("It is 42."), "it is 42")
  T.eq(n("1,2,3"), "1 2 3", "a list, not a number")
  T.eq(n("\u{201C}Yes\u{201D}"), "yes")
  T.eq(n("50%"), "50")
  T.eq(n(nil), "")
end)

T.test("equals: normalized, lists of answers, exact, reasons", function()
  local eq = C.equals()
  local pass, reason, score = eq({ answer = "1,000" }, resp(" 1000. "))
  T.eq(pass, true)
  T.eq(score, 1)
  T.ok(reason:find("equals", 1, true), reason)
  pass, reason, score = eq({ answer = "42" }, resp("41"))
  T.eq({ pass, score }, { false, 0 })
  T.eq(reason, 'got "41", expected "42"')
  T.eq((C.equals { field = "label" })({ label = "Positive", answer = "x" }, resp("positive")), true)
  T.eq((C.equals { "Paris", "Paris, France" })({}, resp("paris france")), true)
  T.eq((C.equals { expected = "Paris", exact = true })({}, resp("paris")), false)
  T.eq((C.equals { expected = function(c) return c.city end })({ city = "Oslo" }, resp("OSLO")), true)
  -- a case with nothing to compare with raises (the experiment reports it)
  T.err(function() eq({ q = 1 }, resp("x")) end, "no expected value")
  T.err(function() C.equals { nosuch = 1 } end, "unknown option nosuch")
  -- no text at all fails, with a reason
  pass, reason = eq({ answer = "a" }, nil)
  T.eq(pass, false)
  T.ok(reason:find("no answer", 1, true), reason)
end)

T.test("contains, regex (Lua patterns), one_of with extraction", function()
  T.eq((C.contains "Paris")({}, resp("The capital is PARIS.")), true)
  T.eq((C.contains "Par")({}, resp("The capital is Paris.")), false, "on word boundaries")
  local pass, reason, score = (C.contains { "red", "blue" })({}, resp("red and green"))
  T.eq(pass, false)
  T.near(score, 0.5, 1e-9)
  T.ok(reason:find('"blue"', 1, true), reason)
  T.eq((C.regex "^%d+$")({}, resp("1234")), true)
  T.eq((C.regex "^%d+$")({}, resp("12a")), false)
  T.err(function() C.regex "[a-" end, "bad Lua pattern")
  local labels = { "positive", "negative", "neutral" }
  T.eq((C.one_of(labels))({}, resp("Negative.")), true)
  T.eq((C.one_of(labels))({}, resp("It is negative.")), false)
  T.eq((C.one_of(labels, { extract = true }))({}, resp("It is negative.")), true)
  pass, reason = (C.one_of(labels, { extract = true }))({}, resp("positive or negative"))
  T.eq(pass, false)
  T.ok(reason:find("names 2", 1, true), reason)
  pass, reason = (C.one_of(labels, { field = "label" }))({ label = "neutral" }, resp("negative"))
  T.eq(pass, false)
  T.ok(reason:find("expected", 1, true), reason)
end)

T.test("json_valid and json_schema: fences, subset keywords, paths in reasons", function()
  T.eq((C.json_valid())({}, resp('```json\n{"a": [1, 2]}\n```')), true)
  local pass, reason = (C.json_valid())({}, resp('{"a": 1,}'))
  T.eq(pass, false)
  T.ok(reason:find("not JSON", 1, true), reason)
  local schema = {
    type = "object", required = { "name", "items" }, additionalProperties = false,
    properties = {
      name = { type = "string", minLength = 1, pattern = "^%u" },
      age = { type = "integer", minimum = 0, maximum = 150 },
      items = { type = "array", minItems = 1, items = { type = "object", required = { "price" },
        properties = { price = { type = "number", exclusiveMinimum = 0 } } } },
      kind = { enum = { "a", "b" } },
      tags = { type = "array" },
    },
  }
  local chk = C.json_schema(schema)
  T.eq(chk({}, resp('{"name": "Ann", "age": 30, "items": [{"price": 2.5}], "kind": "a", "tags": []}')), true)
  local cases = {
    { '{"name": "Ann", "items": [{"price": "2"}]}', '$.items[0].price: expected number, got string' },
    { '{"name": "Ann"}', 'the required property "items" is missing' },
    { '{"name": "ann", "items": [{"price": 1}]}', "does not match the pattern" },
    { '{"name": "Ann", "age": 1.5, "items": [{"price": 1}]}', "$.age: expected integer, got number" },
    { '{"name": "Ann", "items": [{"price": 1}], "x": 1}', 'property "x" is not allowed' },
    { '{"name": "Ann", "items": [{"price": 1}], "kind": "c"}', 'is not one of "a", "b"' },
    { '{"name": "Ann", "items": [{"price": 1}], "tags": {}}', "$.tags: expected array, got object" },
    { '{"name": "Ann", "items": []}', "fewer than 1 items" },
    { '[1]', "$: expected object, got array" },
  }
  for _, c in ipairs(cases) do
    local ok, why = chk({}, resp(c[1]))
    T.eq(ok, false, c[1])
    T.ok(why:find(c[2], 1, true), c[1] .. " -> " .. why)
  end
  T.err(function() C.json_schema { type = "object", oneOf = {} } end, 'keyword "oneOf" is not in the supported subset')
  T.err(function() C.json_schema { type = "map" } end, 'unknown type "map"')
  -- anyOf / allOf
  local any = C.json_schema { anyOf = { { type = "string" }, { type = "number" } } }
  T.eq(any({}, resp('"x"')), true)
  T.eq(any({}, resp("true")), false)
end)

T.test("the JSON reader keeps arrays and objects apart and reads escapes", function()
  local JS = require "llm.check_json"
  local doc = assert(JS.decode('{"a": [], "b": {}, "s": "\\u00e9\\ud83d\\ude00\\n", "n": -1.5e2, "i": 7, "z": null}'))
  T.eq(getmetatable(doc.a), JS.ARRAY)
  T.eq(getmetatable(doc.b), JS.OBJECT)
  T.eq(doc.s, "é😀\n")
  T.eq(doc.n, -150.0)
  T.eq(math.type(doc.i), "integer")
  T.eq(doc.z, JS.null)
  for _, bad in ipairs { "", "{", "[1,]", "01", "1.", '"\\x"', "nul", "[1] 2", '{"a" 1}' } do
    local v, err = JS.decode(bad)
    T.eq(v, nil, bad)
    T.ok(type(err) == "string", bad)
  end
end)

T.test("numeric: the last number, tolerances, formats", function()
  local chk = C.numeric()
  T.eq(chk({ answer = 42 }, resp("17 + 25 = 42")), true)
  T.eq(chk({ answer = "1000" }, resp("The total is 1,000.")), true)
  local pass, reason = chk({ answer = 42 }, resp("41"))
  T.eq(pass, false)
  T.eq(reason, "got 41, expected 42")
  T.eq((C.numeric { abs = 0.5 })({ answer = 42 }, resp("41.6")), true)
  T.eq((C.numeric { rel = 0.01 })({ answer = 1000 }, resp("1009")), true)
  T.eq((C.numeric { rel = 0.01 })({ answer = 1000 }, resp("1011")), false)
  T.eq((C.numeric { pick = "first" })({ answer = 17 }, resp("17 + 25 = 42")), true)
  T.eq((C.numeric { pick = "only" })({ answer = 42 }, resp("17 + 25 = 42")), false)
  T.eq(chk({ answer = -3 }, resp("minus: -3")), true)
  T.eq(chk({ answer = 1500 }, resp("1.5e3")), true)
  pass, reason = chk({ answer = 1 }, resp("none"))
  T.eq(pass, false)
  T.ok(reason:find("no number", 1, true), reason)
  T.err(function() C.numeric { abs = -1 } end, "abs and rel")
end)

T.test("similar: cosine of the two embeddings against a threshold", function()
  local vectors = { ["Paris is the capital."] = { 1, 0 }, ["The capital is Paris."] = { 0.9, math.sqrt(0.19) },
                    ["Bananas are yellow."] = { 0, 1 } }
  local seen
  local emb = { name = "fake" }
  function emb:embed(list, opts)
    seen = opts
    return { vectors = { vectors[list[1]], vectors[list[2]] } }
  end
  local chk = C.similar { model = emb, threshold = 0.85, field = "ref" }
  local pass, reason, score = chk({ ref = "Paris is the capital." }, resp("The capital is Paris."))
  T.eq(pass, true)
  T.near(score, 0.9, 1e-9)
  T.ok(reason:find("0.900", 1, true), reason)
  T.eq(seen.tag, "check", "calls outside an experiment are tagged")
  pass = chk({ ref = "Paris is the capital." }, resp("Bananas are yellow."))
  T.eq(pass, false)
  T.err(function() C.similar { model = {} } end, "embedding model")
end)

-- What judges say, and what the reader must make of it:
-- {answer, pass, score (0..1 or nil), reason fragment}
local JUDGE_ANSWERS = {
  { "VERDICT: PASS\nSCORE: 9\nREASON: Correct and polite.", true, 0.9, "Correct and polite." },
  { "VERDICT: FAIL\nSCORE: 2\nREASON: Wrong city.", false, 0.2, "Wrong city." },
  { "**Verdict:** `Pass`\n**Score:** 8/10\n**Reason:** fine", true, 0.8, "fine" },
  { '{"verdict": "fail", "score": 3, "reason": "missing units"}', false, 0.3, "missing units" },
  { 'Here is my grade: {"pass": true, "score": 10}', true, 1.0, nil },
  { "Score: 7\nReasoning: mostly right", true, 0.7, "mostly right" },
  { "Score: 3 out of 10. The answer misses the point.", false, 0.3, nil },
  { "Rating: 4/5", true, 0.8, nil },
  { "PASS", true, nil, nil },
  { "The answer is wrong. FAIL.", false, nil, nil },
  { "Correct. The capital of France is Paris.", true, nil, nil },
  { "No, the answer does not follow the rubric.", false, nil, nil },
  { "Result: incorrect\nScore: 9", false, 0.9, nil }, -- the verdict decides, the score is shown
  { "Criteria are PASS or FAIL.\nFinal verdict: FAIL", false, nil, nil },
}

T.test("judge verdicts: every common shape is read", function()
  for _, c in ipairs(JUDGE_ANSWERS) do
    local pass, score, reason = J.parse(c[1])
    T.eq(pass, c[2], c[1])
    if c[3] then T.near(score, c[3], 1e-9, c[1]) else T.eq(score, nil, c[1]) end
    if c[4] then T.eq(reason, c[4], c[1]) end
    T.ok(type(reason) == "string" and reason ~= "", c[1])
  end
  -- nothing to read: an error with the start of the answer
  for _, text in ipairs { "", "I think it is about Paris, in 2019.", "It says PASS here and FAIL there" } do
    local pass, err = J.parse(text)
    T.eq(pass, nil, text)
    T.ok(type(err) == "string" and (err:find("verdict", 1, true) or err:find("empty", 1, true)
      or err:find("both", 1, true)), err)
  end
  -- a score alone passes at pass_score of the scale
  T.eq((J.parse("Score: 6", { pass_score = 0.7 })), false)
  T.eq((J.parse("Score: 4", { scale = 5, pass_score = 0.7 })), true)
end)

local function chat_body(text)
  return cjson.encode {
    choices = { { index = 0, message = { role = "assistant", content = text }, finish_reason = "stop" } },
    usage = { prompt_tokens = 100, completion_tokens = 20, total_tokens = 120 }, model = "gpt-4o-mini",
  }
end
-- (the script language reads backslash escapes: double the JSON's)
local function reply(text)
  return "status 200\nheader Content-Type: application/json\nbody " .. chat_body(text):gsub("\\", "\\\\")
end

T.test("judge against a scripted server: its prompt, verdicts, tags, costs, no verdict", function()
  local srv <close> = mock.start(mock.script(reply("VERDICT: PASS\nSCORE: 9\nREASON: Says Paris."),
    reply("VERDICT: FAIL\nSCORE: 1\nREASON: Says Lyon."), reply("Hmm, hard to say.")))
  local judge_model = llm.model { name = "gpt-4o-mini", provider = "openai", base_url = srv.url .. "/v1",
                                  api_key = "sk-x", retry_scale = 0.01 }
  local tags = {}
  local function spy(call) tags[#tags + 1] = call.tag end
  llm.calls.on_finish(spy)
  local j = C.judge { model = judge_model, rubric = "The answer names the right city." }
  local case = { question = "Capital of France?", answer = "Paris" }
  local pass, reason, score = j(case, resp("Paris."))
  T.eq(pass, true)
  T.near(score, 0.9, 1e-9)
  T.eq(reason, "judge: Says Paris.")
  local req = cjson.decode(srv:requests()[1].body)
  T.eq(req.temperature, 0)
  T.ok(req.messages[1].content:find("VERDICT: PASS or VERDICT: FAIL", 1, true), req.messages[1].content)
  local user = req.messages[2].content
  for _, want in ipairs { "The answer names the right city.", "Capital of France?", "Reference answer:\nParis",
                          "Answer to grade:\nParis." } do
    T.ok(user:find(want, 1, true), want .. " in " .. user)
  end
  pass, reason = j(case, resp("Lyon"))
  T.eq(pass, false)
  T.eq(reason, "judge: Says Lyon.")
  T.err(function() j(case, resp("Paris")) end, "no verdict in the judge's answer")
  T.eq(j.stats.calls, 3)
  T.eq(j.stats.no_verdict, 1)
  T.ok(j.stats.cost > 0, "priced as gpt-4o-mini")
  -- outside an experiment the judge's calls carry the tag "judge"
  llm.calls.off(spy)
  T.eq(tags, { "judge", "judge", "judge" })
  T.err(function() C.judge { model = judge_model } end, "rubric")
  T.err(function() C.judge { model = judge_model, rubric = "x", pass_score = 5 } end, "pass_score")
end)

T.test("a check as a cascade's accept: no case, the reason reaches the response", function()
  local srv <close> = mock.start(mock.script(reply("not json at all"), reply('{"name": "Ann"}'),
    reply('{"name": "Bob"}')))
  local function model(name)
    return llm.model { name = name, provider = "openai", base_url = srv.url .. "/v1", api_key = "sk-x",
                       retry_scale = 0.01 }
  end
  local c = llm.route.cascade { model "gpt-4o-mini", model "gpt-4o",
    accept = C.json_schema { type = "object", required = { "name" } } }
  local r = assert(c:chat "Give me a name as JSON")
  T.eq(r.escalated, true)
  T.ok(r.cascade.reason:find("not JSON", 1, true), r.cascade.reason)
  local r2 = assert(c:chat "Another")
  T.eq(r2.escalated, false)
  T.eq(r2.text, '{"name": "Bob"}')
  -- a check needing an expected value says so when it has none
  local pass, why = pcall(C.equals(), resp("x"), "req", {})
  T.eq(pass, false)
  T.ok(tostring(why):find("give expected", 1, true), why)
  T.eq((C.equals { expected = "x" })(resp("X"), "req", {}), true)
end)

T.test("all and any combine checks", function()
  local both = C.all { C.json_valid(), C.contains "ann" }
  T.eq(both({}, resp('{"name": "Ann"}')), true)
  local pass, reason = both({}, resp('{"name": "Bob"}'))
  T.eq(pass, false)
  T.ok(reason:find("does not contain", 1, true), reason)
  local either = C.any { C.equals "yes", C.equals "y" }
  T.eq(either({}, resp("Y")), true)
  T.eq(either({}, resp("no")), false)
  T.err(function() C.all {} end, "non-empty list")
end)
