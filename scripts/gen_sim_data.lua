-- Generates the simulator workloads under examples/data, deterministically
-- (its own PRNG, fixed seeds: the same files on every machine).
--
--   lua5.4 scripts/gen_sim_data.lua [OUTDIR]      (default examples/data)
--   llmrun scripts/gen_sim_data.lua [OUTDIR]
--
-- Files (fields in examples/data/README.md):
--   context_qa.jsonl  questions about facts in handbook-like documents of
--                     ~700-2,400 tokens (filler, boilerplate, distractor facts)
--   arithmetic.jsonl  integer arithmetic questions with answers and difficulty
--   workload.jsonl    a realistic stream for examples/before_after.lua:
--                     context questions with exact repeats, paraphrases and
--                     near-duplicates (same attribute, another entity)
--   tickets.jsonl     labelled support tickets (5 teams), for classification
--                     with llm.sim.task (examples/own_task.lua)
--   support_faq.jsonl 100 support questions: originals, paraphrases (same
--                     answer) and near twins (one word apart, another
--                     answer), for semantic-cache experiments with llm.sim.task
--
-- The facts and questions follow the simulator's context-skill rules
-- (src/sim/sim_context.c): "The <attribute> for the <entity> is <value>." and
-- "What is the <attribute> for the <entity>?" and their paraphrases.
local outdir = arg and arg[1] or "examples/data"

---------------------------------------------------------------------------
-- deterministic randomness: splitmix64 on Lua 5.4's 64-bit integers
local state = 0
local function reseed(s) state = s end
local function next64()
  state = state + 0x9e3779b97f4a7c15
  local z = state
  z = (z ~ (z >> 30)) * 0xbf58476d1ce4e5b9
  z = (z ~ (z >> 27)) * 0x94d049bb133111eb
  return z ~ (z >> 31)
end
local function rand(n) return ((next64() >> 1) % n) + 1 end      -- 1..n
local function range(a, b) return a + rand(b - a + 1) - 1 end     -- a..b
local function pick(t) return t[rand(#t)] end
local function shuffle(t)
  for i = #t, 2, -1 do
    local j = rand(i)
    t[i], t[j] = t[j], t[i]
  end
  return t
end
-- k distinct elements of t
local function sample(t, k)
  local copy = {}
  for i, v in ipairs(t) do copy[i] = v end
  shuffle(copy)
  local out = {}
  for i = 1, k do out[i] = copy[i] end
  return out
end

---------------------------------------------------------------------------
-- JSON lines with a fixed field order
local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    if c == "\n" then return "\\n" end
    if c == "\t" then return "\\t" end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function json_line(fields, rec)
  local parts = {}
  for _, k in ipairs(fields) do
    local v = rec[k]
    if v ~= nil then
      local enc
      if type(v) == "string" then enc = json_string(v)
      elseif math.type(v) == "integer" then enc = tostring(v)
      elseif type(v) == "number" then enc = string.format("%.3f", v)
      elseif type(v) == "boolean" then enc = tostring(v)
      else error("unsupported field " .. k) end
      parts[#parts + 1] = json_string(k) .. ":" .. enc
    end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function write_file(name, fields, records)
  local path = outdir .. "/" .. name
  local f = assert(io.open(path, "w"))
  for _, r in ipairs(records) do f:write(json_line(fields, r), "\n") end
  f:close()
  local g = assert(io.open(path, "rb"))
  local size = #g:read("a")
  g:close()
  print(("%-24s %4d records %8d bytes"):format(path, #records, size))
end

---------------------------------------------------------------------------
-- vocabulary
local cities = {
  "Lisbon", "Porto", "Oslo", "Nairobi", "Denver", "Osaka", "Lyon", "Krakow", "Austin",
  "Dublin", "Seoul", "Lima", "Perth", "Quito", "Tunis", "Riga", "Turin", "Bergen",
  "Leeds", "Accra", "Hanoi", "Tallinn", "Cork", "Bilbao", "Ghent", "Graz", "Split",
  "Bremen", "Malaga", "Lublin",
}
local projects = {
  "Falcon", "Juniper", "Orion", "Maple", "Harbor", "Quartz", "Atlas", "Beacon", "Cobalt",
  "Delta", "Ember", "Fjord", "Granite", "Horizon", "Indigo", "Kestrel", "Lantern", "Meridian",
  "Nimbus", "Onyx", "Pioneer", "Raven", "Sierra", "Tundra",
}
local services = {
  "billing service", "search cluster", "payments gateway", "reporting pipeline",
  "identity service", "mobile backend", "email relay", "inventory database",
  "analytics warehouse", "file storage service", "notification service", "pricing engine",
}
local first_names = {
  "Maria", "James", "Aisha", "Tomasz", "Chen", "Fatima", "Lucas", "Ingrid", "Kwame", "Sofia",
  "Rahul", "Elena", "Diego", "Yuki", "Amara", "Pieter", "Nadia", "Omar", "Freya", "Mateo",
}
local last_names = {
  "Okafor", "Lindqvist", "Haddad", "Novak", "Moreau", "Tanaka", "Oliveira", "Kowalski",
  "Mensah", "Brennan", "Sato", "Varga", "Ruiz", "Andersen", "Ibrahim", "Costa", "Fischer",
  "Nguyen", "Petrov", "Walsh",
}
local months = {
  "January", "February", "March", "April", "May", "June", "July", "August", "September",
  "October", "November", "December",
}
local weekdays = { "Monday", "Tuesday", "Wednesday", "Thursday", "Friday" }
local words = {
  "amber", "cedar", "harbor", "lantern", "meadow", "orchid", "pebble", "quiver", "saffron",
  "timber", "violet", "willow", "copper", "falcon", "garnet", "hazel",
}

local function person() return pick(first_names) .. " " .. pick(last_names) end
-- Codes start with 3-9 so they never read as a year of the filler.
local function digits(n)
  local s = tostring(range(3, 9))
  for _ = 2, n do s = s .. tostring(range(0, 9)) end
  return s
end
local function money(cur, lo, hi)
  local v = range(lo, hi) * 100
  local s = tostring(v):reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return cur .. s
end
local function date() return range(1, 28) .. " " .. pick(months) .. " " .. range(2025, 2027) end

-- Attribute kinds per entity kind: the attribute phrase and a value maker.
local kinds = {
  office = {
    entity = function(name) return "the " .. name .. " office" end,
    names = cities,
    owner_has_article = true,
    attributes = {
      { "access code", function() return digits(4) end },
      { "alarm code", function() return digits(4) end },
      { "guest wifi password", function() return pick(words) .. "-" .. pick(words) .. "-" .. digits(2) end },
      { "reception extension", function() return digits(4) end },
      { "building manager", person },
      { "parking permit prefix", function() return "P" .. digits(3) end },
      { "monthly cleaning budget", function() return money("EUR ", 20, 90) end },
      { "fire assembly point", function() return "the " .. pick({ "north", "east", "south", "west" }) .. " " .. pick({ "car park", "courtyard", "gate", "lawn", "plaza", "entrance" }) end },
    },
  },
  project = {
    entity = function(name) return "Project " .. name end,
    names = projects,
    owner_has_article = false,
    attributes = {
      { "budget", function() return money("$", 120, 980) end },
      { "launch date", date },
      { "project lead", person },
      { "ticket prefix", function() return pick(projects):upper():sub(1, 3) .. digits(1) end },
      { "steering sponsor", person },
      { "review cadence", function() return "every " .. range(2, 9) .. " weeks on " .. pick(weekdays) end },
    },
  },
  service = {
    entity = function(name) return "the " .. name end,
    names = services,
    owner_has_article = true,
    attributes = {
      { "on-call engineer", person },
      { "database port", function() return tostring(range(3000, 9999)) end },
      { "log retention period", function() return range(2, 18) * 15 .. " days" end },
      { "deployment window", function() return pick(weekdays) .. " from " .. range(8, 15) .. ":00 to " .. range(16, 19) .. ":00 UTC" end },
      { "error budget", function() return range(1, 9) .. "." .. range(1, 9) .. " percent per month" end },
      { "escalation contact", person },
    },
  },
}

---------------------------------------------------------------------------
-- facts and questions

-- subject phrase: "the access code for the Lisbon office", "the budget of Project Falcon"
local function subject(attr, ent, kind)
  local prep = kind == "project" and "of" or "for"
  return "the " .. attr .. " " .. prep .. " " .. ent
end

local function capitalise(s) return (s:gsub("^%l", string.upper)) end

local fact_forms = {
  function(s, v) return capitalise(s) .. " is " .. v .. "." end,
  function(s, v) return capitalise(s) .. " is " .. v .. "." end,
  function(s, v) return "For reference, " .. s .. " is " .. v .. "." end,
  function(s, v) return "According to the latest memo, " .. s .. " is " .. v .. ", as confirmed by the operations group." end,
  function(s, v) return "Note: " .. s .. " is " .. v .. "." end,
}

local function outdated_fact(s, v)
  return "Until the " .. pick({ "spring", "summer", "autumn", "winter" }) .. " audit, " .. s .. " was " .. v .. "."
end

-- The question word for an attribute: people are "who", dates "when".
local function wh_word(attr)
  if attr:find("date") then return "when" end
  for _, a in ipairs({ "manager", "lead", "sponsor", "engineer", "contact" }) do
    if attr:find(a) then return "who" end
  end
  return "what"
end

-- The question forms the simulator recognises (src/sim/sim_context.c).
local function question_forms(attr, ent, kind)
  local s = subject(attr, ent, kind)
  local wh = wh_word(attr)
  local forms = {
    original = capitalise(wh) .. " is " .. s .. "?",
    capitalise(wh) .. "'s " .. s .. "?",
    "Tell me " .. s .. ".",
    "Could you tell me " .. wh .. " " .. s .. " is?",
    "Please give me " .. s .. ".",
  }
  if kind ~= "project" then
    -- possessive: "What's the Lisbon office's access code?"
    forms[#forms + 1] = capitalise(wh) .. "'s " .. ent .. "'s " .. attr .. "?"
    forms[#forms + 1] = "Tell me the " .. attr .. " of " .. ent .. "."
  end
  return forms
end

---------------------------------------------------------------------------
-- filler: handbook prose that mentions the entities but states no fact
-- the questions ask about

local filler_phrases = {
  "It is important to note that ", "As mentioned earlier, ", "Please note that ",
  "Needless to say, ", "For the avoidance of doubt, ", "In general, ",
}

-- Sentences for every document, then sentences about the entities of one
-- kind ({E}).
local filler_general = {
  "requests that arrive after five in the afternoon are handled on the next working day.",
  "new starters receive a laptop, a badge and a short tour during their first week.",
  "printers on every floor accept badges, and spare toner is kept in the supply room.",
  "all expenses above the usual limit need approval from a manager before purchase.",
  "meeting rooms can be booked up to two weeks ahead through the internal calendar.",
  "questions about payroll go to the finance team, who reply within two working days.",
  "laptops must be locked when left unattended, even for a short break.",
  "the internal wiki lists the contacts for every team, and it is updated every quarter.",
  "teams are encouraged to document decisions in the shared drive rather than in chat.",
  "each team nominates a safety officer who attends a short training course in {M}.",
  "the kitchen on the {N} floor is cleaned every evening, and staff are asked to label their food.",
  "the annual survey asks every employee how working practices could be improved.",
}
local filler_by_kind = {
  office = {
    "staff at {E} usually meet on {D} mornings to review open requests and plan the week ahead.",
    "visitors to {E} must sign in at the front desk and wear a visitor badge at all times.",
    "{E} switched to a shared cleaning contract in {Y} in order to reduce costs.",
    "the security team runs a fire drill at {E} twice a year, usually on a {D}.",
    "remote staff are welcome to visit {E} and can reserve a desk one day in advance.",
    "the maintenance contractor for {E} visits on the first {D} of each month.",
    "the bicycle storage near {E} has room for {N2} bicycles and opens at seven.",
    "during the summer months, {E} closes an hour earlier on Fridays.",
    "deliveries for {E} are accepted between nine and four on working days.",
    "{E} keeps a small library of technical books that anyone may borrow for a month.",
  },
  project = {
    "the team working on {E} meets every {D} to review progress against the plan.",
    "risks for {E} are tracked in the shared register and reviewed at each milestone.",
    "{E} depends on two vendors, and both contracts are renewed in {M}.",
    "the next milestone for {E} focuses on testing and documentation.",
    "stakeholders receive a summary of {E} after every sprint.",
    "scope changes to {E} need written approval from the steering group.",
    "the retrospective for {E} in {M} produced {N2} action items, most of them now closed.",
    "{E} was started in {Y} and has grown from three people to a full team.",
  },
  service = {
    "alerts for {E} are routed to the on-call rotation through the paging tool.",
    "{E} runs in two regions, and traffic fails over automatically.",
    "changes to {E} go through code review and a staged rollout.",
    "dashboards for {E} show latency, error rate and throughput for the last week.",
    "backups of {E} are tested once a month by restoring them to a spare environment.",
    "the runbook for {E} lists the first checks to make during an incident.",
    "capacity for {E} is reviewed every {D}, and {N2} percent headroom is the usual target.",
    "incidents affecting {E} are reviewed in a blameless meeting within five working days.",
  },
}

local ordinals = { "first", "second", "third", "fourth", "fifth" }

local function filler_sentence(kind_name, entities)
  local t = rand(3) == 1 and pick(filler_general) or pick(filler_by_kind[kind_name])
  t = t:gsub("{E}", function() return pick(entities) end)
  t = t:gsub("{D}", function() return pick(weekdays) end)
  t = t:gsub("{N}", function() return pick(ordinals) end)
  t = t:gsub("{N2}", function() return tostring(range(12, 60)) end)
  t = t:gsub("{Y}", function() return tostring(range(2015, 2024)) end)
  t = t:gsub("{M}", function() return pick(months) end)
  if rand(4) == 1 then
    return pick(filler_phrases) .. t
  end
  return capitalise(t)
end

local headings = {
  "Access and security", "Facilities", "Planning and reporting", "Contacts",
  "Working arrangements", "Operations", "Budget and approvals", "Onboarding",
}
local boilerplate =
  "This document is confidential and intended for internal use only. Do not forward it outside the company."

-- Words that would change how the simulator answers if they appeared in a
-- prompt's instructions; the documents never use them.
local forbidden = { "explain", "step by step", "show your work", "what is the", "tell me the",
  "give me the", "compute", "calculate", "evaluate", "how much is" }

local function approx_tokens(s) return #s // 4 end

---------------------------------------------------------------------------
-- one document with its facts and questions

local doc_titles = {
  office = "Office handbook: %s",
  project = "Project status report: %s",
  service = "Service runbook: %s",
}

-- Returns { id, context, questions = { {subject, attr, ent, kind, value, fact} ... } }
local function make_document(id, kind_name, target_tokens, nquestions, want_near_dup)
  local kind = kinds[kind_name]
  local names = sample(kind.names, 3)
  local ents = {}
  for i, n in ipairs(names) do ents[i] = kind.entity(n) end
  local attrs = sample(kind.attributes, math.min(4, #kind.attributes))

  -- Facts: every entity gets most attributes; values unique in the doc.
  local facts, used = {}, {}
  local function fresh(make)
    for _ = 1, 100 do
      local v = make()
      if not used[v] then used[v] = true; return v end
    end
  end
  for _, ent in ipairs(ents) do
    for _, a in ipairs(attrs) do
      local v = rand(5) > 1 and fresh(a[2])
      if v then
        facts[#facts + 1] = { attr = a[1], ent = ent, kind = kind_name, value = v,
          subject = subject(a[1], ent, kind_name) }
      end
    end
  end
  shuffle(facts)

  -- Questions: nquestions facts; optionally two that share an attribute
  -- (near-duplicates for semantic caching).
  local asked, near_dup = {}, false
  if want_near_dup then
    for i = 1, #facts do
      for j = i + 1, #facts do
        if #asked == 0 and facts[i].attr == facts[j].attr then
          asked[1], asked[2] = facts[i], facts[j]
          near_dup = true
        end
      end
    end
  end
  for _, f in ipairs(facts) do
    if #asked >= nquestions then break end
    local dup = false
    for _, a in ipairs(asked) do dup = dup or a == f end
    if not dup then asked[#asked + 1] = f end
  end

  -- Fact sentences, and outdated values of asked subjects as distractors.
  local fact_sentences = {}
  for _, f in ipairs(facts) do
    f.sentence = pick(fact_forms)(f.subject, f.value)
    fact_sentences[#fact_sentences + 1] = f.sentence
  end
  for _, f in ipairs(asked) do
    if rand(2) == 1 then
      local make
      for _, a in ipairs(kind.attributes) do
        if a[1] == f.attr then make = a[2] end
      end
      local old = fresh(make)
      if old then fact_sentences[#fact_sentences + 1] = outdated_fact(f.subject, old) end
    end
  end
  shuffle(fact_sentences)

  -- Paragraphs of filler; fact sentences placed at random paragraphs.
  local paragraphs = {}
  local tokens = 0
  local entity_names = ents
  while tokens < target_tokens do
    local p = {}
    for _ = 1, range(3, 6) do
      local f
      repeat f = filler_sentence(kind_name, entity_names) until f ~= p[#p]
      p[#p + 1] = f
    end
    paragraphs[#paragraphs + 1] = p
    tokens = tokens + approx_tokens(table.concat(p, " "))
  end
  for _, s in ipairs(fact_sentences) do
    local p = paragraphs[rand(#paragraphs)]
    table.insert(p, rand(#p + 1), s)
  end

  -- Sections with headings, the boilerplate footer after each section, and
  -- the formatting noise real documents carry (double spaces, trailing
  -- spaces, blank lines).
  local out = { doc_titles[kind_name]:format(table.concat(names, ", ")), "" }
  local section_len = range(2, 3)
  for i, p in ipairs(paragraphs) do
    if (i - 1) % section_len == 0 then
      out[#out + 1] = "## " .. pick(headings)
      out[#out + 1] = ""
    end
    local text = table.concat(p, rand(6) == 1 and "  " or " ")
    if rand(5) == 1 then text = text .. "   " end
    out[#out + 1] = text
    out[#out + 1] = ""
    if i % section_len == 0 or i == #paragraphs then
      out[#out + 1] = boilerplate
      out[#out + 1] = ""
      if rand(3) == 1 then out[#out + 1] = "" end
    end
  end
  local context = table.concat(out, "\n"):gsub("\n+$", "")

  local lower = context:lower()
  for _, w in ipairs(forbidden) do
    assert(not lower:find(w, 1, true), "document uses '" .. w .. "'")
  end
  for _, f in ipairs(asked) do
    local a = context:find(f.sentence, 1, true)
    assert(a, "fact sentence missing")
    f.position = a / #context
    local _, count = context:gsub(f.value:gsub("%p", "%%%0"), "")
    assert(count == 1, "value not unique in its document: " .. f.value)
  end
  return { id = id, context = context, asked = asked, kind = kind_name, near_dup = near_dup }
end

---------------------------------------------------------------------------
-- context_qa.jsonl: 24 documents x 4 questions, plus one paraphrase each

local qa_fields = { "id", "group", "kind", "doc", "question", "answer", "fact", "fact_position", "context" }

local function context_qa()
  reseed(20260101)
  local records = {}
  local kind_cycle = { "office", "project", "service" }
  for d = 1, 24 do
    local doc_id = ("d%02d"):format(d)
    local doc = make_document(doc_id, kind_cycle[(d - 1) % 3 + 1], range(650, 2200), 4, false)
    for qi, f in ipairs(doc.asked) do
      local forms = question_forms(f.attr, f.ent, f.kind)
      local id = ("qa-%s-%d"):format(doc_id, qi)
      records[#records + 1] = { id = id, group = id, kind = "original", doc = doc_id,
        question = forms.original, answer = f.value, fact = f.sentence,
        fact_position = f.position, context = doc.context }
      if qi == 1 then
        records[#records + 1] = { id = id .. "-p", group = id, kind = "paraphrase", doc = doc_id,
          question = pick(forms), answer = f.value, fact = f.sentence,
          fact_position = f.position, context = doc.context }
      end
    end
  end
  write_file("context_qa.jsonl", qa_fields, records)
end

---------------------------------------------------------------------------
-- arithmetic.jsonl: 200 questions, difficulty per the simulator's rule:
-- operators + multiplications of two operands >= 10 + (a number >= 1000)
-- + (parentheses)

local arith_fields = { "id", "question", "answer", "difficulty" }

local function arithmetic()
  reseed(20260202)
  local forms = {
    function() local a, b = range(10, 999), range(10, 999)
      return ("What is %d + %d?"):format(a, b), a + b, 1 + (a >= 1000 and 1 or 0) end,
    function() local a, b = range(10, 999), range(10, 999)
      return ("What is %d - %d?"):format(a, b), a - b, 1 end,
    function() local a, b = range(2, 9), range(10, 999)
      return ("Compute %d * %d."):format(a, b), a * b, 1 end,
    function() local a, b = range(11, 99), range(11, 99)
      return ("How much is %d times %d?"):format(a, b), a * b, 2 end,
    function() local a, b, c = range(2, 9), range(11, 99), range(10, 500)
      return ("What is %d * %d + %d?"):format(a, b, c), a * b + c, 2 end,
    function() local a, b, c = range(11, 60), range(11, 60), range(10, 900)
      return ("Compute %d * %d - %d."):format(a, b, c), a * b - c, 3 end,
    function() local a, b, c = range(10, 99), range(10, 99), range(2, 9)
      return ("Calculate (%d + %d) * %d."):format(a, b, c), (a + b) * c, 3 end,
    function() local a, b, c, d = range(10, 99), range(10, 99), range(10, 99), range(10, 99)
      return ("What is %d + %d + %d + %d?"):format(a, b, c, d), a + b + c + d, 3 end,
    function() local a, b, c, d = range(11, 40), range(11, 40), range(11, 40), range(2, 9)
      return ("Compute %d * %d - %d * %d."):format(a, b, c, d), a * b - c * d, 4 end,
    function() local a, b, c = range(1000, 9999), range(10, 99), range(2, 9)
      return ("What is %d - %d * %d?"):format(a, b, c), a - b * c, 3 end,
  }
  local records = {}
  for i = 1, 200 do
    local q, ans, diff = forms[(i - 1) % #forms + 1]()
    records[#records + 1] = { id = ("ar-%03d"):format(i), question = q, answer = tostring(ans),
      difficulty = diff }
  end
  write_file("arithmetic.jsonl", arith_fields, records)
end

---------------------------------------------------------------------------
-- workload.jsonl: a stream of 80 requests over 12 documents:
-- 48 originals, 16 exact repeats, 16 paraphrases; 8 documents have two
-- questions that differ only in the entity (near-duplicates).

local wl_fields = { "id", "group", "kind", "near_duplicate_of", "doc", "question", "answer", "context" }

local function workload()
  reseed(20260303)
  local originals = {}
  local kind_cycle = { "office", "service", "project" }
  for d = 1, 12 do
    local doc_id = ("w%02d"):format(d)
    local doc = make_document(doc_id, kind_cycle[(d - 1) % 3 + 1], range(600, 2000), 4, d <= 8)
    local ids = {}
    for qi, f in ipairs(doc.asked) do
      local id = ("wl-%s-%d"):format(doc_id, qi)
      ids[qi] = id
      originals[#originals + 1] = { id = id, group = id, kind = "original", doc = doc_id,
        question = question_forms(f.attr, f.ent, f.kind).original, answer = f.value,
        context = doc.context, forms = question_forms(f.attr, f.ent, f.kind),
        near_duplicate_of = (doc.near_dup and qi == 2) and ids[1] or nil }
    end
  end
  local stream = shuffle(originals)
  local extras = {}
  local chosen = sample(originals, 32)
  for i, o in ipairs(chosen) do
    local kind = i <= 16 and "repeat" or "paraphrase"
    extras[#extras + 1] = { id = o.id .. (kind == "repeat" and "-r" or "-p"), group = o.id,
      kind = kind, doc = o.doc, question = kind == "repeat" and o.question or pick(o.forms),
      answer = o.answer, context = o.context }
  end
  -- Each extra goes somewhere after its original.
  for _, e in ipairs(extras) do
    local at
    for i, r in ipairs(stream) do if r.id == e.group then at = i end end
    table.insert(stream, range(at + 1, #stream + 1), e)
  end
  write_file("workload.jsonl", wl_fields, stream)
end

---------------------------------------------------------------------------
-- tickets.jsonl: 100 support tickets, each with the team that handles it.
-- A ticket that also mentions another team's topic is harder (difficulty 2).

local ticket_fields = { "id", "text", "label", "difficulty" }

local ticket_topics = {
  billing = { "I was charged twice for order %s", "the invoice for order %s shows the wrong VAT number",
              "my card was billed again for order %s after I downgraded my plan", "I see a charge for order %s that I do not recognise" },
  shipping = { "order %s has not left the depot for a week", "the courier says order %s was delivered but it was not",
               "the tracking page for order %s has not changed since Monday", "order %s went to my old address" },
  returns = { "I want to send back order %s because it is too small", "the return label for order %s does not print",
              "I returned order %s a month ago and have no refund yet", "the item in order %s arrived broken and I want to return it" },
  account = { "I cannot log in since I changed my e-mail to %s", "my account is locked after three wrong passwords, user %s",
              "please delete my account, customer number %s", "the two-factor code never arrives on phone %s" },
  technical = { "the app crashes when I open order %s", "the checkout page shows error %s and stops",
                "the website is blank in my browser since version %s", "search returns nothing for product %s" },
}
local ticket_labels = { "billing", "shipping", "returns", "account", "technical" }
local ticket_openers = { "Hello,", "Hi team,", "Good morning,", "Dear support,", "Hey," }
local ticket_closers = { "Thanks.", "Please help.", "Kind regards.", "Can you look into it?", "Thank you in advance." }

local function tickets()
  reseed(20260404)
  local records = {}
  for i = 1, 100 do
    local label = ticket_labels[(i - 1) % #ticket_labels + 1]
    local ref = tostring(range(100000, 999999))
    local body = pick(ticket_topics[label]):format(ref)
    local difficulty = 1
    if rand(4) == 1 then -- a second topic makes it harder
      local other = pick(ticket_labels)
      while other == label do other = pick(ticket_labels) end
      body = body .. ", and earlier " .. pick(ticket_topics[other]):format(tostring(range(100000, 999999)))
      difficulty = 2
    end
    records[i] = { id = ("tk-%03d"):format(i), label = label, difficulty = difficulty,
      text = ("%s %s (customer %s %s). %s"):format(pick(ticket_openers), body, person(),
        tostring(range(1000, 9999)), pick(ticket_closers)) }
  end
  write_file("tickets.jsonl", ticket_fields, shuffle(records))
end

---------------------------------------------------------------------------
-- support_faq.jsonl: 100 support questions. 40 originals ("How do I change
-- my billing address?": 20 objects, two actions each), one paraphrase of
-- each (same answer), and 20 near twins: an original's question about a
-- sibling object that no original asks about ("... my billing e-mail?"),
-- whose answer differs. Every extra comes after its original.

local faq_fields = { "id", "group", "kind", "twin_of", "question", "answer" }

-- object, menu path, its two actions, the twin object and its menu path
local faq_objects = {
  { "billing address", "Settings > Billing > Address", { "change", "update" }, "billing e-mail", "Settings > Billing > E-mail" },
  { "shipping address", "Settings > Delivery > Address", { "change", "add" }, "return address", "Orders > Returns > Address" },
  { "password", "Settings > Security > Password", { "reset", "change" }, "PIN", "Settings > Security > PIN" },
  { "e-mail address", "Settings > Profile > E-mail", { "change", "verify" }, "backup e-mail address", "Settings > Recovery > E-mail" },
  { "phone number", "Settings > Profile > Phone", { "change", "verify" }, "backup phone number", "Settings > Recovery > Phone" },
  { "invoice", "Orders > Documents > Invoices", { "download", "print" }, "receipt", "Orders > Documents > Receipts" },
  { "subscription", "Settings > Plan > Subscription", { "cancel", "pause" }, "newsletter", "Settings > Notifications > Newsletter" },
  { "order", "Orders > Current", { "track", "cancel" }, "refund", "Orders > Returns > Refunds" },
  { "payment card", "Settings > Billing > Cards", { "add", "remove" }, "gift card", "Wallet > Gift cards" },
  { "username", "Settings > Profile > Username", { "change", "recover" }, "display name", "Settings > Profile > Display name" },
  { "delivery slot", "Orders > Delivery > Slots", { "book", "change" }, "pickup slot", "Orders > Pickup > Slots" },
  { "two-factor login", "Settings > Security > Two-factor", { "turn on", "turn off" }, "login alerts", "Settings > Security > Alerts" },
  { "profile photo", "Settings > Profile > Photo", { "change", "remove" }, "cover photo", "Settings > Profile > Cover" },
  { "wish list", "Lists > Wish list", { "share", "clear" }, "shopping list", "Lists > Shopping list" },
  { "loyalty points", "Wallet > Points", { "check", "transfer" }, "gift points", "Wallet > Gift points" },
  { "language", "Settings > Region > Language", { "change", "reset" }, "currency", "Settings > Region > Currency" },
  { "time zone", "Settings > Region > Time zone", { "change", "set" }, "date format", "Settings > Region > Date format" },
  { "marketing e-mails", "Settings > Notifications > Marketing", { "stop", "resume" }, "push notifications", "Settings > Notifications > Push" },
  { "saved searches", "Search > Saved", { "delete", "export" }, "saved filters", "Search > Filters" },
  { "API key", "Developer > Keys", { "rotate", "revoke" }, "webhook secret", "Developer > Webhooks" },
}
local faq_forms = {
  "How do I %s my %s?",
  "What is the way to %s my %s?",
  "Can you tell me how to %s my %s?",
  "I need to %s my %s. How do I do that?",
  "Where do I go to %s my %s?",
  "How can I %s my %s online?",
}

local function faq_answer(path, action)
  return ("Open %s and choose %s."):format(path, capitalise(action))
end

local function support_faq()
  reseed(20260505)
  local originals = {}
  for _, o in ipairs(faq_objects) do
    for ai, action in ipairs(o[3]) do
      originals[#originals + 1] = { obj = o, action = action, first = ai == 1 }
    end
  end
  shuffle(originals)
  local stream, extras = {}, {}
  for i, it in ipairs(originals) do
    local id = ("faq-%02d"):format(i)
    local answer = faq_answer(it.obj[2], it.action)
    stream[#stream + 1] = { id = id, group = id, kind = "original",
      question = faq_forms[1]:format(it.action, it.obj[1]), answer = answer }
    extras[#extras + 1] = { id = id .. "-p", group = id, kind = "paraphrase",
      question = faq_forms[range(2, #faq_forms)]:format(it.action, it.obj[1]), answer = answer }
    if it.first then -- the same question about the twin object: another answer
      extras[#extras + 1] = { id = id .. "-t", group = id .. "-t", kind = "twin", twin_of = id,
        question = faq_forms[1]:format(it.action, it.obj[4]), answer = faq_answer(it.obj[5], it.action) }
    end
  end
  for _, e in ipairs(shuffle(extras)) do
    local of = e.kind == "twin" and e.twin_of or e.group
    local at
    for i, r in ipairs(stream) do if r.id == of then at = i end end
    table.insert(stream, range(at + 1, #stream + 1), e)
  end
  write_file("support_faq.jsonl", faq_fields, stream)
end

context_qa()
arithmetic()
workload()
tickets()
support_faq()
