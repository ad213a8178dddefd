-- llm.cache.semantic: similar prompts answered from the cache, scopes,
-- the audit and its false-hit table, prompt embeddings through the
-- embedding cache, and persistence of the vectors.
local T = ...
local mock = require "mock"
local cjson = require "cjson"
local tmpdb = T.tmpdb
local remove_db = T.remove_db
local script = mock.script

local function chat_body(text)
  return cjson.encode {
    choices = { { index = 0, message = { role = "assistant", content = text }, finish_reason = "stop" } },
    usage = { prompt_tokens = 10, completion_tokens = 2, total_tokens = 12 }, model = "gpt-4o-mini",
  }
end

local function reply(body) return "status 200\nheader Content-Type: application/json\nbody " .. body end
-- An embedding model whose vectors the test chooses: cos(A, B) = 0.95,
-- cos(A, C) = 0.80, cos(B, C) ~ 0.57, D orthogonal to all.
local vectors = {
  ["capital of France?"] = { 1, 0, 0 },
  ["France's capital city?"] = { 0.95, math.sqrt(1 - 0.95 ^ 2), 0 },
  ["largest city of France?"] = { 0.8, -0.6, 0 },
  ["how do magnets work?"] = { 0, 0, 1 },
}
local function fake_embedder()
  local e = { name = "fake-embed", provider = "test", simulated = true, calls = 0, cache = true }
  function e:embed(text)
    self.calls = self.calls + 1
    local v = vectors[text]
    if not v then return nil, llm.error("http", "no vector for " .. text) end
    return { vectors = { v } }
  end
  return e
end

local function chat_model(srv, cache)
  return llm.model { name = "gpt-4o-mini", provider = "openai", base_url = srv.url .. "/v1",
                     api_key = "sk-x", cache = cache, retry_scale = 0.01 }
end

T.test("a similar prompt is a semantic hit; a less similar one a miss", function()
  local srv = mock.start(script(reply(chat_body("Paris")), reply(chat_body("Lyon? No: Paris"))))
  local path = tmpdb()
  local emb = fake_embedder()
  local s = assert(llm.cache.semantic { path = path, embed = emb, threshold = 0.9 })
  local m = chat_model(srv, s)
  local r1 = assert(m:chat { user = "capital of France?", temperature = 0 })
  T.eq(r1.cached, false)
  local r2 = assert(m:chat { user = "France's capital city?", temperature = 0 })
  T.eq(r2.cached, "semantic")
  T.eq(r2.text, "Paris")
  T.near(r2.similarity, 0.95, 1e-5)
  T.eq(r2.matched_prompt, "capital of France?")
  T.eq(r2.usage.completion_tokens, 0)
  T.eq(r2.saved.usage.completion_tokens, 2)
  T.eq(#srv:requests(), 1)
  local r3 = assert(m:chat { user = "largest city of France?", temperature = 0 })
  T.eq(r3.cached, false, "0.80 is under the threshold")
  T.eq(#srv:requests(), 2)
  -- the exact cache answers first (no embedding needed)
  local before = emb.calls
  T.eq(assert(m:chat { user = "capital of France?", temperature = 0 }).cached, "exact")
  T.eq(emb.calls, before)
  -- streams replay semantic hits too
  local parts = {}
  for d in m:stream { user = "France's capital city?", temperature = 0 } do parts[#parts + 1] = d.text end
  T.eq(table.concat(parts), "Paris")
  local st = s:stats()
  T.eq({ st.semantic_hits, st.exact_hits, st.misses }, { 2, 1, 2 })
  -- vectors persist: a reopened cache still matches
  s:close()
  s = assert(llm.cache.semantic { path = path, embed = fake_embedder(), threshold = 0.9 })
  T.eq(assert(chat_model(srv, s):chat { user = "France's capital city?", temperature = 0 }).cached, "semantic")
  T.eq(#srv:requests(), 2)
  s:close()
  remove_db(path)
  srv:stop()
end)

T.test("scope: by default only requests alike but for the last message match", function()
  local srv = mock.start(script(reply(chat_body("Paris"))))
  local path = tmpdb()
  local s = assert(llm.cache.semantic { path = path, embed = fake_embedder(), threshold = 0.9 })
  local m = chat_model(srv, s)
  assert(m:chat { user = "capital of France?", temperature = 0 })
  local other_system = assert(m:chat { system = "Answer in French.", user = "France's capital city?", temperature = 0 })
  T.eq(other_system.cached, false)
  local other_params = assert(m:chat { user = "France's capital city?", temperature = 0, max_tokens = 5 })
  T.eq(other_params.cached, false)
  local other_model = assert(chat_model(srv, s):with { name = "gpt-4o" }
    :chat { user = "France's capital city?", temperature = 0 })
  T.eq(other_model.cached, false)
  T.eq(#srv:requests(), 4)
  -- scope = "model": any request to the same model
  local wide = assert(llm.cache.semantic { path = path, namespace = "wide", embed = fake_embedder(),
                                           threshold = 0.9, scope = "model" })
  local mw = chat_model(srv, wide)
  assert(mw:chat { user = "capital of France?", temperature = 0 })
  T.eq(assert(mw:chat { system = "Be terse.", user = "France's capital city?", max_tokens = 5,
                        temperature = 0 }).cached, "semantic")
  -- scope function
  local by_user = assert(llm.cache.semantic { path = path, namespace = "fn", embed = fake_embedder(),
    threshold = 0.9, scope = function(call) return call.opts.tag or "" end })
  local mf = chat_model(srv, by_user)
  assert(mf:chat({ user = "capital of France?", temperature = 0 }, { tag = "alice" }))
  T.eq(assert(mf:chat({ user = "France's capital city?", temperature = 0 }, { tag = "bob" })).cached, false)
  T.eq(assert(mf:chat({ user = "France's capital city?", temperature = 0, max_tokens = 9 }, { tag = "alice" })).cached,
       "semantic")
  s:close()
  remove_db(path)
  srv:stop()
end)

T.test("audit: sampled hits and near misses give a false-hit table", function()
  local srv = mock.start(script(reply(chat_body("Paris")), reply(chat_body("paris.")),
                                reply(chat_body("Marseille"))))
  local path = tmpdb()
  local s = assert(llm.cache.semantic { path = path, embed = fake_embedder(), threshold = 0.9,
                                        audit = { rate = 1, floor = 0.7 } })
  local m = chat_model(srv, s)
  assert(m:chat { user = "capital of France?", temperature = 0 })
  -- 0.95: a semantic match, re-asked upstream (rate 1): same answer
  local r = assert(m:chat { user = "France's capital city?", temperature = 0 })
  T.eq(r.cached, false)
  T.eq(r.text, "paris.")
  T.eq(r.audit.differed, false)
  T.near(r.audit.similarity, 0.95, 1e-5)
  -- 0.80: a near miss, compared for free: another answer
  local r2 = assert(m:chat { user = "largest city of France?", temperature = 0 })
  T.eq(r2.audit.differed, true)
  -- nothing similar: no audit
  local r3 = assert(m:chat { user = "how do magnets work?", temperature = 0 })
  T.eq(r3.audit, nil)
  T.eq(#srv:requests(), 4)
  local rows = assert(s:audit_table { 0.75, 0.85, 0.9, 0.99 })
  T.eq(#rows, 4)
  T.eq({ rows[1].samples, rows[1].differed }, { 2, 1 })
  T.near(rows[1].false_hit_rate, 0.5, 1e-9)
  T.eq({ rows[2].samples, rows[2].differed }, { 1, 0 })
  T.eq(rows[2].false_hit_rate, 0)
  T.eq(rows[4].samples, 0)
  T.eq(rows[4].false_hit_rate, nil)
  local text = s:format_audit { 0.75, 0.99 }
  T.ok(text:find("0.75", 1, true) and text:find("50.0%", 1, true), text)
  -- the CLI shows it
  s:close()
  local st, out = T.llmrun(("cache stats --path %q"):format(path))
  T.eq(st, 0)
  T.ok(out:find("semantic audit", 1, true), out)
  remove_db(path)
  srv:stop()
end)

T.test("audit rate weights: default comparison ignores case, space, final dot", function()
  local same = require("llm.cache_semantic").same_text
  T.ok(same("Paris.", " paris "))
  T.ok(same("The  answer\nis 4!", "the answer is 4"))
  T.ok(same("It costs $1,000.", "it costs 1000"), "number formats and punctuation")
  T.ok(not same("4", "5"))
end)

-- Long answers: the support desk's, paraphrased (the same answer) or about
-- another country (a different one). The embedder's vectors are chosen:
-- the paraphrases 0.93 apart, the two countries' answers 0.95.
local RESET_A = "You can reset your password from the login page by clicking Forgot password and following the emailed link."
local RESET_B = "To reset the password, click Forgot password on the login page, then follow the link we email you."
local SHIP_MX = "Shipping to Mexico takes 7 to 10 business days and costs 15 dollars for orders under 50 dollars."
local SHIP_CA = "Shipping to Canada takes 5 to 8 business days and costs 12 dollars for orders under 50 dollars."
local answer_vectors = {
  ["How do I reset my password?"] = { 1, 0, 0, 0 }, ["How can I reset my password?"] = { 0.95, 0.3122, 0, 0 },
  ["What does shipping to Mexico cost?"] = { 0, 0, 1, 0 }, ["What does shipping to Canada cost?"] = { 0, 0, 0.95, 0.3122 },
  [RESET_A] = { 1, 0, 0, 0 }, [RESET_B] = { 0.93, 0.3676, 0, 0 },
  [SHIP_MX] = { 0, 0, 1, 0 }, [SHIP_CA] = { 0, 0, 0.95, 0.3122 },
}
local function list_embedder()
  local e = { name = "fake-embed", provider = "test", simulated = true, cache = true }
  function e:embed(input)
    local out = {}
    for i, t in ipairs(type(input) == "table" and input or { input }) do
      out[i] = answer_vectors[t] or error("no vector for " .. t)
    end
    return { vectors = out }
  end
  return e
end

T.test("audit: true paraphrases are not false hits; a changed number is; a comparator decides when given", function()
  local srv = mock.start(script(reply(chat_body(RESET_A)), reply(chat_body(RESET_B)),
                                reply(chat_body(SHIP_MX)), reply(chat_body(SHIP_CA))))
  local path = tmpdb()
  local s = assert(llm.cache.semantic { path = path, embed = list_embedder(), threshold = 0.9,
                                        audit = { rate = 1 } })
  local m = chat_model(srv, s)
  assert(m:chat { user = "How do I reset my password?", temperature = 0 })
  local r = assert(m:chat { user = "How can I reset my password?", temperature = 0 })
  T.eq(r.text, RESET_B, "re-asked upstream (rate 1)")
  T.eq(r.audit.differed, false, "a paraphrase of the same answer")
  T.eq(r.audit.compared, "embedding")
  T.near(r.audit.answer_similarity, 0.93, 1e-3)
  assert(m:chat { user = "What does shipping to Mexico cost?", temperature = 0 })
  local r2 = assert(m:chat { user = "What does shipping to Canada cost?", temperature = 0 })
  T.eq(r2.audit.differed, true, "close in meaning, other numbers: another answer")
  T.eq(r2.audit.compared, "numbers")
  local rows = assert(s:audit_table { 0.9 })
  T.eq({ rows[1].samples, rows[1].differed }, { 2, 1 })
  T.near(rows[1].false_hit_rate, 0.5, 1e-9, "not 100%: the paraphrase counts as the same answer")
  s:close()
  remove_db(path)
  srv:stop()

  -- a comparator of the user's decides alone (and one that raises is skipped, with a warning)
  local srv2 = mock.start(script(reply(chat_body(RESET_A)), reply(chat_body(RESET_B))))
  local path2 = tmpdb()
  local seen = {}
  local s2 = assert(llm.cache.semantic { path = path2, embed = list_embedder(), threshold = 0.9,
    audit = { rate = 1, same = function(a, b) seen[#seen + 1] = { a, b } return false end } })
  local m2 = chat_model(srv2, s2)
  assert(m2:chat { user = "How do I reset my password?", temperature = 0 })
  local r3 = assert(m2:chat { user = "How can I reset my password?", temperature = 0 })
  T.eq({ r3.audit.differed, r3.audit.compared }, { true, "custom" })
  T.eq(seen, { { RESET_A, RESET_B } })
  s2:close()
  remove_db(path2)
  srv2:stop()
  T.err(function() llm.cache.semantic { path = tmpdb(), embed = list_embedder(), audit = { similarity = 2 } } end,
    "audit.similarity")
  T.err(function() llm.cache.semantic { path = tmpdb(), embed = list_embedder(), audit = { nosuch = 1 } } end,
    "unknown audit option nosuch")
end)

T.test("prompt embeddings over HTTP go through the embedding cache", function()
  local function emb(v)
    return reply(cjson.encode { data = { { index = 0, embedding = v } }, usage = { prompt_tokens = 3, total_tokens = 3 } })
  end
  local srv = mock.start(script(emb { 1, 0, 0 }, reply(chat_body("Paris")),
                                emb { 0.95, math.sqrt(1 - 0.95 ^ 2), 0 }, reply(chat_body("unexpected"))))
  local path = tmpdb()
  local em = llm.model { name = "text-embedding-3-small", provider = "openai", base_url = srv.url .. "/v1",
                         api_key = "sk-x" }
  local s = assert(llm.cache.semantic { path = path, embed = em, threshold = 0.9 })
  local m = chat_model(srv, s)
  assert(m:chat { user = "capital of France?", temperature = 0 })
  local r = assert(m:chat { user = "France's capital city?", temperature = 0 })
  T.eq(r.cached, "semantic")
  T.eq(#srv:requests(), 3) -- embed, chat, embed
  T.eq(srv:requests()[3].path, "/v1/embeddings")
  -- asked again: no exact entry for it, but its vector is cached: no request
  T.eq(assert(m:chat { user = "France's capital city?", temperature = 0 }).cached, "semantic")
  T.eq(#srv:requests(), 3)
  s:close()
  remove_db(path)
  srv:stop()
end)

T.test("a failing embedding model: the call still works, one warning", function()
  local srv = mock.start(script(reply(chat_body("fine"))))
  local path = tmpdb()
  local st, out, err = T.llmrun(([[-e '
    package.path = %q .. "/tests/lua/?.lua;" .. package.path
    local e = { name = "broken", provider = "test", cache = true }
    function e:embed() return nil, llm.error("http", "embedding service down") end
    local s = assert(llm.cache.semantic { path = %q, embed = e })
    local m = llm.model { name = "g", provider = "openai", base_url = %q, api_key = "k", cache = s }
    for i = 1, 3 do print(assert(m:chat { user = "q" .. i, temperature = 0 }).text) end
    print(assert(m:chat { user = "q1", temperature = 0 }).cached)']]):format(
      os.getenv("LLMRUN_SOURCE_DIR") or ".", path, srv.url .. "/v1"))
  T.eq(st, 0)
  T.eq(out, "fine\nfine\nfine\nexact\n")
  local _, n = err:gsub("embedding a prompt failed", "")
  T.eq(n, 1, err)
  remove_db(path)
  srv:stop()
end)
