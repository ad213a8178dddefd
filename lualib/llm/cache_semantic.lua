-- The semantic cache: a request that missed the exact cache may still be
-- answered by the stored response of a *similar* request.
--
--   local s = llm.cache.semantic{ embed = llm.model "text-embedding-3-small",
--                                 threshold = 0.92, scope = "request",
--                                 audit = { rate = 0.05, floor = 0.80 } }
--
-- The last user message is embedded (through the same cache, so a prompt
-- seen before costs no embedding call) and compared by cosine similarity
-- with the prompts stored before it, in C over an in-memory float32
-- matrix. A match at or above the threshold answers with
-- cached = "semantic", its similarity and the prompt it matched.
--
-- Scope decides which stored prompts may match: "request" (the default)
-- only those whose request is identical except for the last user message
-- (same model, parameters, system prompt and earlier turns); "model" any
-- of the same model; or a function(call) returning a scope name.
--
-- Audit: a similar prompt is not a promise of the same answer. With audit
-- on, a sampled share (rate) of semantic hits is asked upstream anyway and
-- the fresh answer compared with the cached one; near misses (similarity
-- between floor and the threshold) are compared for free, since they went
-- upstream regardless. Each comparison is stored with its similarity, so
-- s:audit_table() gives, per candidate threshold, the share of matches
-- whose answer differed: the false-hit rate you would get with it.
--
-- When answers "differ" (M.compare_answers), unless audit.same =
-- fn(cached_text, fresh_text) -> boolean decides instead:
--   1. equal after llm.check.normalize (case, white space, punctuation,
--      number formats): the same;
--   2. else, when both have at least LONG_WORDS words: the same when the
--      cosine similarity of their embeddings (the cache's embedding model,
--      one call for both, cached) is at least audit.similarity (default
--      0.90) and they contain the same numbers; embeddings say two texts
--      are about the same thing, not that they agree, so a changed number
--      always counts as a different answer;
--   3. else (short answers that differ after normalizing): different.
local C = require "_llm.cache"
local canon = require "llm.cache_canon"
local messages = require "llm.messages"

local M = {}

-- What this module uses of llm.cache, and nothing else (llm.cache passes
-- it to M.new; see semantic_api there):
--   check_opts(opts, fname, extra), open_store(opts), new_view(shared, opts)
--   read(cache, key) -> the stored answer (a doc), created | nil
--   hit(cache, call, doc, kind, extra) -> the response of a hit
--   warn(cache, what, msg): a storage problem, reported once per store
local api

M.DEFAULT_THRESHOLD = 0.92
M.DEFAULT_AUDIT_RATE = 0.05
M.THRESHOLDS = { 0.80, 0.84, 0.88, 0.90, 0.92, 0.94, 0.96, 0.98 }

M.DEFAULT_SAME_SIMILARITY = 0.90
M.LONG_WORDS = 8

--- Answers are "the same text" when equal after llm.check.normalize: case,
-- white space, punctuation and number formats ("1,000." = "1000").
function M.same_text(a, b)
  local norm = require("llm.check").normalize
  return norm(a) == norm(b)
end

local function word_count(s) return select(2, tostring(s or ""):gsub("%S+", "")) end

local function numbers_of(s)
  local list = require("llm.check")._numbers_in(s)
  table.sort(list)
  return table.concat(list, " ")
end

--- compare_answers(sem, a, b) -> same (boolean), how ("custom",
-- "normalized", "embedding" or "numbers"), answer similarity (or nil).
-- nil when a user comparator raised (that comparison is not recorded).
function M.compare_answers(sem, a, b)
  local audit = sem.audit
  if audit.custom then
    local ok, same = pcall(audit.same, a, b)
    if not ok then return nil, tostring(same) end
    return same and true or false, "custom"
  end
  if M.same_text(a, b) then return true, "normalized" end
  -- an embedding call waits: only where the caller's task can (always in
  -- a model call made from a task)
  if word_count(a) < M.LONG_WORDS or word_count(b) < M.LONG_WORDS or not coroutine.isyieldable() then
    return false, "normalized"
  end
  local r = sem.embed:embed({ tostring(a), tostring(b) }, sem.dimensions and { dimensions = sem.dimensions } or nil)
  local va, vb = r and r.vectors and r.vectors[1], r and r.vectors and r.vectors[2]
  if type(va) ~= "table" or type(vb) ~= "table" then return false, "normalized" end
  local sim = require("llm.check").cosine(va, vb)
  if sim < audit.similarity then return false, "embedding", sim end
  if numbers_of(a) ~= numbers_of(b) then return false, "numbers", sim end
  return true, "embedding", sim
end

-- The text of the last user message (string content, or the text parts
-- of a list of content parts), and its index.
local function prompt_text(body)
  return messages.last_user_text(body.messages)
end

local function hash64(s)
  return (string.unpack("<i8", C.sha256(s)))
end

local function scope_of(sem, call, last)
  if sem.scope == "model" then
    return hash64("model\0" .. canon.model_identity(call.model))
  elseif type(sem.scope) == "function" then
    return hash64("fn\0" .. canon.model_identity(call.model) .. "\0" .. tostring(sem.scope(call)))
  end
  -- "request": everything but the last user message's text
  local body = {}
  for k, v in pairs(call.body) do body[k] = v end
  local msgs = {}
  for i, m in ipairs(call.body.messages) do
    if i == last then
      local copy = {}
      for k, v in pairs(m) do copy[k] = v end
      copy.content = ""
      msgs[i] = copy
    else
      msgs[i] = m
    end
  end
  body.messages = msgs
  local text = canon.request(call.model, "chat", body)
  return text and hash64(text) or nil
end

local function embed_prompt(cache, sem, text)
  local r, err = sem.embed:embed(text, sem.dimensions and { dimensions = sem.dimensions } or nil)
  local v = r and r.vectors and r.vectors[1]
  if type(v) ~= "table" or #v == 0 then
    api.warn(cache, "embedding a prompt failed",
      err and tostring(err) or "no vector")
    return nil
  end
  return v
end

-- Before-hook part, after an exact miss: nil, or a semantic hit.
local function lookup(cache, call, plan)
  local sem = cache.semantic
  local db = cache.shared.db
  local text, last = prompt_text(call.body)
  if not text or not db then return nil end
  local scope = scope_of(sem, call, last)
  if not scope then return nil end
  local vec = embed_prompt(cache, sem, text)
  if not vec then return nil end
  plan.sem = { vec = vec, scope = scope, prompt = text }
  local key, sim, id, matched = db:sem_search(cache.ns, sem.space, scope, vec)
  if not key then
    if sim then api.warn(cache, "searching similar prompts failed", sim.message) end
    return nil
  end
  local audit = sem.audit
  if sim >= sem.threshold then
    local doc, created = api.read(cache, key)
    if not doc then
      db:sem_remove(cache.ns, sem.space, id) -- its response is gone
      return nil
    end
    if audit and math.random() < audit.rate then
      -- re-ask this one upstream and compare (after)
      plan.audit = { similarity = sim, cached_text = doc.text, weight = 1 / audit.rate }
      return nil
    end
    return api.hit(cache, call, doc, "semantic",
      { similarity = sim, prompt = matched, created = created })
  end
  if audit and sim >= audit.floor then
    local doc = api.read(cache, key)
    if doc then plan.audit = { similarity = sim, cached_text = doc.text, weight = 1 } end
  end
  return nil
end

-- Finish-hook part, after a successful upstream answer.
local function after(cache, call, plan, resp, stored)
  local sem = cache.semantic
  local db = cache.shared.db
  if not db then return end
  if stored and plan.sem then
    local id, err = db:sem_add(cache.ns, sem.space, plan.sem.scope, plan.key, plan.sem.vec,
                               plan.sem.prompt)
    if not id then api.warn(cache, "storing failed", err.message) end
  end
  -- the comparison may embed both answers: it waits, so it runs after
  -- the finish-stages (M.audit_after, from the cache.audit after-stage)
  if plan.audit then call.semantic_audit = { cache = cache, plan = plan } end
end

--- After-hook part: compares an audited call's answer with the cached one
-- and records whether they differed.
function M.audit_after(call, resp)
  local pending = call.semantic_audit
  if not pending or not resp then return end
  call.semantic_audit = nil
  local cache, plan = pending.cache, pending.plan
  local sem, db = cache.semantic, cache.shared.db
  if not db then return end
  local same, how, answer_sim = M.compare_answers(sem, plan.audit.cached_text, resp.text)
  if same == nil then
    api.warn(cache, "the audit's comparator raised", how)
    return
  end
  local differs = not same
  local ok, err = db:audit_add(cache.ns, plan.audit.similarity, differs, plan.audit.weight)
  if not ok then api.warn(cache, "storing failed", err.message) end
  resp.audit = { similarity = plan.audit.similarity, differed = differs, compared = how,
                 answer_similarity = answer_sim }
end

local semantic_keys = { embed = "table", threshold = "number", scope = "any", audit = "any",
                        dimensions = "number" }

function M.new(opts, cache_api)
  api = cache_api
  opts = api.check_opts(opts, "llm.cache.semantic", semantic_keys)
  local embed = opts.embed
  if type(embed) ~= "table" or type(embed.embed) ~= "function" then
    error("llm.cache.semantic: embed must be an embedding model (llm.model \"...\")", 3)
  end
  local threshold = opts.threshold or M.DEFAULT_THRESHOLD
  if not (threshold > 0 and threshold <= 1) then
    error("llm.cache.semantic: threshold must be in (0, 1]", 3)
  end
  local scope = opts.scope or "request"
  if scope ~= "request" and scope ~= "model" and type(scope) ~= "function" then
    error("llm.cache.semantic: scope must be \"request\", \"model\" or a function(call)", 3)
  end
  local audit = opts.audit
  if audit == true then audit = {} end
  if audit then
    if type(audit) ~= "table" then error("llm.cache.semantic: audit must be true or a table", 3) end
    local rate = audit.rate or M.DEFAULT_AUDIT_RATE
    if not (type(rate) == "number" and rate > 0 and rate <= 1) then
      error("llm.cache.semantic: audit.rate must be in (0, 1]", 3)
    end
    local floor = audit.floor or math.max(0, threshold - 0.12)
    if audit.same ~= nil and type(audit.same) ~= "function" then
      error("llm.cache.semantic: audit.same must be a function(cached_text, fresh_text)", 3)
    end
    local similarity = audit.similarity or M.DEFAULT_SAME_SIMILARITY
    if not (type(similarity) == "number" and similarity > 0 and similarity <= 1) then
      error("llm.cache.semantic: audit.similarity must be in (0, 1]", 3)
    end
    for k in pairs(audit) do
      if k ~= "rate" and k ~= "floor" and k ~= "same" and k ~= "similarity" then
        error("llm.cache.semantic: unknown audit option " .. tostring(k), 3)
      end
    end
    audit = { rate = rate, floor = floor, same = audit.same, custom = audit.same ~= nil,
              similarity = similarity }
  end
  local shared, err = api.open_store(opts)
  if not shared then return nil, err end
  local c = api.new_view(shared, opts)
  c.semantic = {
    -- prompt vectors go through the same store, so repeated prompts are
    -- free; counted under "<namespace>/prompts", apart from the requests
    embed = embed.cache and embed or embed:with_cache(c:namespace(c.ns .. "/prompts")),
    threshold = threshold, scope = scope, audit = audit, dimensions = opts.dimensions,
    space = canon.model_identity(embed) .. "#" .. tostring(opts.dimensions or "native"),
    lookup = lookup, after = after,
  }
  return c
end

--- Rows {threshold, samples, differed, false_hit_rate} for cache c.
function M.audit_table(c, thresholds)
  local rows, err = c.shared.db:audit_table(c.ns, thresholds or M.THRESHOLDS)
  if not rows then return nil, err end
  return rows
end

--- The table as text: one line per threshold.
function M.format_audit(rows)
  local out = { "threshold  samples  differed  false-hit rate" }
  for _, r in ipairs(rows) do
    out[#out + 1] = ("%9.2f  %7d  %8d  %s"):format(r.threshold, r.samples, r.differed,
      r.false_hit_rate and ("%13.1f%%"):format(r.false_hit_rate * 100) or "            -")
  end
  return table.concat(out, "\n")
end

return M
