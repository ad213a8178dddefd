-- Query-aware extractive selection for llm.compress.select: split the
-- text into units, rank them against the query with BM25, keep the best
-- within a token budget, in their original order.
--
-- BM25 (Robertson & Zaragoza, "The Probabilistic Relevance Framework:
-- BM25 and Beyond", 2009), with the idf of Lucene's BM25Similarity, which
-- is never negative:
--   idf(q)      = ln(1 + (N - df(q) + 0.5) / (df(q) + 0.5))
--   score(u, Q) = sum over distinct q in Q of
--                 idf(q) * tf(q,u) * (k1 + 1) / (tf(q,u) + k1 * (1 - b + b * |u| / avg|u|))
-- N: the number of units; df: units holding the term; tf: its count in
-- the unit; |u|: the unit's length in terms. k1 = 1.2 and b = 0.75 by
-- default (the values Lucene and most references use).
--
-- Terms: the text is lower-cased (ASCII letters only; other bytes are
-- kept), split on anything that is not an ASCII letter or digit or a
-- byte of a non-ASCII character (Unicode punctuation such as — “ ” « »
-- and the CJK marks 、。 split too); a final plural "s" is dropped from
-- ASCII words longer than 3 letters not ending in "ss" ("offices" ->
-- "office", "access" stays); the English stopwords below are dropped.
-- Chinese and Japanese text has no spaces: each CJK character (U+3040 to
-- U+9FFF) is a term of its own.
local units = require "llm.compress_units"

local M = {}

M.K1, M.B = 1.2, 0.75

-- Function words and question words: they would make every sentence
-- match a question.
local stopwords = {}
for w in ([[a an the and or but nor of for in on at to by from with into onto over under as
  is are was were be been being am do does did done has have had having will would shall should
  can could may might must this that these those it its it's s they them their there here we our
  you your he she his her him i me my what who whom whose which where when why how whats
  tell give please about than then so if not no yes all any some each per via also just
  one ones do does]]):gmatch("%S+") do
  stopwords[w] = true
end
M.stopwords = stopwords

-- Unicode punctuation that separates words: General Punctuation
-- (U+2000-U+206F), CJK Symbols and Punctuation (U+3000-U+303F), no-break
-- space, « » and the fullwidth , . : ; ! ?
local function unicode_spaces(s)
  s = s:gsub("\226\128[\128-\191]", " "):gsub("\226\129[\128-\175]", " ")
  s = s:gsub("\227\128[\128-\191]", " "):gsub("\194[\160\171\187]", " ")
  s = s:gsub("\239\188[\129\140\142\154\155\159]", " ")
  return s
end

-- A CJK character: lead byte E3 (from U+3040) to E9 (U+9FFF).
local function split_cjk(w, out)
  local pos = 1
  while pos <= #w do
    local a, e = w:find("[\227-\233][\128-\191][\128-\191]", pos)
    if not a then
      out[#out + 1] = w:sub(pos)
      break
    end
    if a > pos then out[#out + 1] = w:sub(pos, a - 1) end
    out[#out + 1] = w:sub(a, e)
    pos = e + 1
  end
end

local function add_term(out, t)
  if #t > 3 and t:byte(-1) == 115 and t:byte(-2) ~= 115 and not t:find("[\128-\255]") then
    t = t:sub(1, -2) -- a plural "s"
  end
  if not stopwords[t] then out[#out + 1] = t end
end

--- terms(text) -> list of terms, as described above.
function M.terms(text)
  local out = {}
  local unicode = text:find("[\128-\255]") ~= nil
  if unicode then text = unicode_spaces(text) end
  for w in text:lower():gmatch("[%w\128-\255]+") do
    if unicode and w:find("[\227-\233]") then
      local pieces = {}
      split_cjk(w, pieces)
      for _, t in ipairs(pieces) do add_term(out, t) end
    else
      add_term(out, w)
    end
  end
  return out
end

--- bm25(docs, query, k1, b) -> scores: docs is a list of term lists.
function M.bm25(docs, query, k1, b)
  k1, b = k1 or M.K1, b or M.B
  local n = #docs
  local df, tfs, lens = {}, {}, {}
  local total = 0
  for i, d in ipairs(docs) do
    local tf = {}
    for _, t in ipairs(d) do
      local c = tf[t]
      if not c then df[t] = (df[t] or 0) + 1 end
      tf[t] = (c or 0) + 1
    end
    tfs[i], lens[i] = tf, #d
    total = total + #d
  end
  local avg = n > 0 and total / n or 0
  local scores = {}
  for i = 1, n do scores[i] = 0 end
  local seen = {}
  for _, q in ipairs(query) do
    if not seen[q] and df[q] then
      seen[q] = true
      local idf = math.log(1 + (n - df[q] + 0.5) / (df[q] + 0.5))
      for i = 1, n do
        local tf = tfs[i][q]
        if tf then
          local norm = avg > 0 and (1 - b + b * lens[i] / avg) or 1
          scores[i] = scores[i] + idf * tf * (k1 + 1) / (tf + k1 * norm)
        end
      end
    end
  end
  return scores
end

-- Units that differ only in case and spacing are the same unit.
local function docs_key(text, u)
  return (text:sub(u.s, u.e):lower():gsub("%s+", " "))
end

--- select(text, o, count, truncate) -> text, fields for the stats.
-- o: query, budget (already an integer >= 0), unit, chunk_tokens,
-- keep_first, only_matching, k1, b. count(s) -> tokens;
-- truncate(s, n) -> s cut to n tokens.
function M.select(text, o, count, truncate, total)
  local budget = o.budget
  local info = { budget = budget }
  if total <= budget then
    info.note = "the text fits the budget: unchanged"
    return text, info
  end
  if budget == 0 then
    info.note = "budget 0: nothing kept"
    return "", info
  end
  local us = units.split(text, o.unit, { chunk_tokens = o.chunk_tokens, count = count })
  info.units = #us
  if #us == 0 then
    info.note = "no text to select from"
    return "", info
  end
  local q = M.terms(o.query)
  info.query_terms = q
  local docs, ntok = {}, {}
  for i, u in ipairs(us) do
    local s = text:sub(u.s, u.e)
    docs[i] = M.terms(s)
    ntok[i] = count(s)
  end
  local scores = M.bm25(docs, q, o.k1, o.b)
  local order = {}
  for i = 1, #us do order[i] = i end
  local any = false
  for i = 1, #us do if scores[i] > 0 then any = true break end end
  if any then
    table.sort(order, function(x, y)
      if scores[x] ~= scores[y] then return scores[x] > scores[y] end
      return x < y
    end)
  else
    info.note = #q == 0 and "the query has no terms to rank by: kept the first units"
      or "no unit shares a term with the query: kept the first units"
  end
  local rank = {}
  for r, i in ipairs(order) do rank[i] = r end

  local keep, used = {}, 0
  if o.keep_first and ntok[1] <= budget then
    keep[1] = true
    used = ntok[1]
  end
  local top = order[1]
  if not keep[top] and ntok[top] > budget - used and used == 0 then
    -- not even the best unit fits: keep its beginning
    local cut, n = truncate(text:sub(us[top].s, us[top].e), budget)
    info.kept, info.truncated = 1, true
    info.note = ("the budget (%d tokens) is smaller than the best %s (%d tokens): kept its first %d tokens")
      :format(budget, o.unit, ntok[top], n)
    return cut, info
  end
  -- a unit that repeats one already kept adds nothing: skipped
  local kept_text = {}
  for i in pairs(keep) do kept_text[docs_key(text, us[i])] = true end
  for _, i in ipairs(order) do
    local key = docs_key(text, us[i])
    if not keep[i] and not kept_text[key] and (not o.only_matching or scores[i] > 0)
       and used + ntok[i] <= budget then
      keep[i] = true
      kept_text[key] = true
      used = used + ntok[i]
    end
  end
  local out = units.join(text, us, keep)
  -- separators (paragraph breaks) cost tokens too: drop the lowest-ranked
  -- kept units until the whole fits
  local n = count(out)
  while n > budget do
    local worst
    for i in pairs(keep) do
      if (worst == nil or rank[i] > rank[worst]) and not (o.keep_first and i == 1) then worst = i end
    end
    if not worst then break end
    keep[worst] = nil
    out = units.join(text, us, keep)
    n = count(out)
  end
  local kept = 0
  for _ in pairs(keep) do kept = kept + 1 end
  info.kept = kept
  info.tokens_after = n
  return out, info
end

return M
