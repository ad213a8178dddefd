-- The simulator workloads under examples/data: the generator reproduces the
-- committed files byte for byte, and every file has the documented shape
-- (examples/data/README.md).
local T = ...
local cjson = require "cjson"

local DATA = "examples/data/"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function records(name)
  local out = {}
  for line in read(DATA .. name):gmatch("[^\n]+") do
    out[#out + 1] = cjson.decode(line)
  end
  return out
end

local function count(haystack, needle)
  local n, i = 0, 1
  while true do
    local a, b = haystack:find(needle, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end

T.test("the generator reproduces the committed files", function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  local status, out, err = T.llmrun("scripts/gen_sim_data.lua " .. dir)
  T.eq(status, 0, "generator exit status: " .. err)
  T.ok(out:find("workload.jsonl", 1, true), "generator output")
  for _, name in ipairs({ "context_qa.jsonl", "arithmetic.jsonl", "workload.jsonl", "tickets.jsonl", "support_faq.jsonl" }) do
    T.ok(read(dir .. "/" .. name) == read(DATA .. name), name .. " differs from a fresh run")
    os.remove(dir .. "/" .. name)
  end
  os.remove(dir)
end)

T.test("the files stay modest", function()
  local total = 0
  for _, name in ipairs({ "context_qa.jsonl", "arithmetic.jsonl", "workload.jsonl", "tickets.jsonl", "support_faq.jsonl" }) do
    total = total + #read(DATA .. name)
  end
  T.ok(total < 2 * 1024 * 1024, "total " .. total .. " bytes")
end)

T.test("context_qa: fields, groups, one fact per answer", function()
  local recs = records("context_qa.jsonl")
  T.ok(#recs >= 100, "cases: " .. #recs)
  local ids, originals, paraphrases = {}, 0, 0
  for _, r in ipairs(recs) do
    for _, k in ipairs({ "id", "group", "kind", "doc", "question", "answer", "fact", "context" }) do
      T.eq(type(r[k]), "string", r.id .. "." .. k)
    end
    T.ok(not ids[r.id], "duplicate id " .. r.id)
    ids[r.id] = r
    T.ok(r.fact_position > 0 and r.fact_position < 1)
    if r.kind == "original" then
      originals = originals + 1
      T.eq(r.group, r.id)
    else
      T.eq(r.kind, "paraphrase")
      paraphrases = paraphrases + 1
      T.eq(ids[r.group].answer, r.answer, "paraphrase of " .. r.group)
      T.ok(ids[r.group].question ~= r.question)
    end
    T.eq(count(r.context, r.fact), 1, r.id .. ": fact sentence")
    T.eq(count(r.context, r.answer), 1, r.id .. ": answer in context")
    T.ok(r.fact:find(r.answer, 1, true), r.id .. ": answer in fact")
    T.ok(r.question:match("[%?%.]$"), r.id .. ": question ends a sentence")
  end
  T.ok(originals >= 96 and paraphrases >= 24)
end)

T.test("arithmetic: answers are the values of the expressions", function()
  local recs = records("arithmetic.jsonl")
  T.eq(#recs, 200)
  local by_difficulty = {}
  for _, r in ipairs(recs) do
    local expr = r.question:match("[%d%(][%d%s%+%-%*%(%)]*[%d%)]") or
      r.question:match("(%d+) times (%d+)")
    local a, b = r.question:match("(%d+) times (%d+)")
    if a then expr = a .. "*" .. b end
    local value = assert(load("return " .. expr))()
    T.eq(tostring(value), r.answer, r.id .. " " .. r.question)
    T.ok(r.difficulty == math.floor(r.difficulty) and r.difficulty >= 1)
    by_difficulty[r.difficulty] = (by_difficulty[r.difficulty] or 0) + 1
  end
  -- A spread of difficulties for routing experiments.
  T.ok(by_difficulty[1] and by_difficulty[2] and by_difficulty[3] and by_difficulty[4])
end)

T.test("workload: repeats and paraphrases follow their originals", function()
  local recs = records("workload.jsonl")
  T.eq(#recs, 80)
  local seen, kinds, near, by_id = {}, {}, 0, {}
  for _, r in ipairs(recs) do by_id[r.id] = r end
  for _, r in ipairs(recs) do
    kinds[r.kind] = (kinds[r.kind] or 0) + 1
    if r.kind == "original" then
      T.eq(r.group, r.id)
    else
      local o = seen[r.group]
      T.ok(o, r.id .. " comes after its original")
      T.eq(o.answer, r.answer)
      T.eq(o.context, r.context)
      if r.kind == "repeat" then T.eq(o.question, r.question) else T.ok(o.question ~= r.question) end
    end
    if r.near_duplicate_of then
      near = near + 1
      local o = by_id[r.near_duplicate_of]
      T.ok(o and o.doc == r.doc and o.answer ~= r.answer, r.id .. " near-duplicate")
    end
    T.eq(count(r.context, r.answer), 1, r.id .. ": answer in context")
    seen[r.id] = r
  end
  T.eq(kinds, { original = 48, ["repeat"] = 16, paraphrase = 16 })
  T.ok(near >= 6, "near-duplicates: " .. near)
end)

T.test("tickets: labelled, every team, unique texts", function()
  local recs = records("tickets.jsonl")
  T.eq(#recs, 100)
  local labels, texts = {}, {}
  for _, r in ipairs(recs) do
    T.ok(r.id and r.text and r.label and (r.difficulty == 1 or r.difficulty == 2), r.id)
    labels[r.label] = (labels[r.label] or 0) + 1
    T.ok(not texts[r.text], "duplicate text " .. r.id)
    texts[r.text] = true
  end
  T.eq(labels, { billing = 20, shipping = 20, returns = 20, account = 20, technical = 20 })
end)

T.test("support_faq: originals, paraphrases with their answer, near twins with another", function()
  local recs = records("support_faq.jsonl")
  T.eq(#recs, 100)
  local seen, kinds = {}, {}
  for _, r in ipairs(recs) do
    kinds[r.kind] = (kinds[r.kind] or 0) + 1
    if r.kind == "paraphrase" then
      T.ok(seen[r.group], r.id .. " comes after its original")
      T.eq(r.answer, seen[r.group].answer)
      T.ok(r.question ~= seen[r.group].question)
    elseif r.kind == "twin" then
      T.ok(seen[r.twin_of], r.id .. " comes after its original")
      T.ok(r.answer ~= seen[r.twin_of].answer)
    else
      T.eq(r.group, r.id)
    end
    seen[r.id] = r
  end
  T.eq(kinds, { original = 40, paraphrase = 40, twin = 20 })
end)
