-- Splitting text into units (sentences, paragraphs, lines, chunks) for the
-- compression strategies that keep or drop whole units (llm.compress:
-- dedupe, select), and joining the kept ones back.
--
-- A unit is a span {s, e} of byte positions (inclusive) that starts and
-- ends with a non-space byte; every non-space byte of the text belongs to
-- exactly one unit and what lies between units is whitespace. Splits only
-- happen at ASCII bytes or after a whole UTF-8 character, never inside one.
--
-- Sentences: a sentence ends at a line end, or after '.', '!' or '?' (any
-- run of them, then any closing quotes or brackets) followed by
-- whitespace, or after the CJK full stops 。！？ (no space needed). Not
-- after a single capital letter ("J. Smith") or one of the abbreviations
-- listed below ("e.g. this", "Dr. Who"). This matches how the simulator
-- reads facts (a sentence ends at a newline or at . ! ? before a space).
local M = {}

-- Words after which a '.' does not end a sentence (lower case, without
-- their final dot). Kept short on purpose: a missed split only makes a
-- unit longer, while a wrong split could cut a fact in two.
local abbreviations = {}
for _, w in ipairs { "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "e.g", "i.e",
  "cf", "fig", "approx", "inc", "ltd", "corp", "dept" } do
  abbreviations[w] = true
end
M.abbreviations = abbreviations

-- CJK sentence ends (UTF-8): 。 U+3002, ！ U+FF01, ？ U+FF1F.
local cjk_stops = { ["\227\128\130"] = true, ["\239\188\129"] = true, ["\239\188\159"] = true }

-- The word that ends at position i (the byte before a '.'), lower case.
local function word_before(text, i)
  local a = i
  while a > 0 and text:sub(a, a):match("[%w%.]") do a = a - 1 end
  return text:sub(a + 1, i):lower()
end

-- Is the '.'/'!'/'?' run ending at `e` (inclusive) a sentence end?
-- `p` is the position of its first byte.
local function ends_sentence(text, p, e)
  local c = text:sub(p, p)
  if c ~= "." or e > p then return true end -- "!", "?", "..." and "?!" always end
  local w = word_before(text, p - 1)
  if w == "" then return true end
  if #w == 1 and w:match("%a") and text:sub(p - 1, p - 1):match("%u") then return false end
  if abbreviations[w] then return false end
  return true
end

-- Sentences of one line (a span [a, b] with no newline, trimmed) appended to out.
local function line_sentences(text, a, b, out)
  local start = a
  local pos = a
  while pos <= b do
    local p = text:find("[%.!?\227\239]", pos)
    if not p or p > b then break end
    local c = text:byte(p)
    if c == 227 or c == 239 then
      local ch = text:sub(p, p + 2)
      if cjk_stops[ch] and p + 2 <= b then
        out[#out + 1] = { s = start, e = p + 2 }
        local nxt = text:find("[^ \t\r\f\v]", p + 3)
        start = nxt or b + 1
        pos = start
      else
        pos = p + 1
      end
    else
      local e = p
      while e + 1 <= b and text:sub(e + 1, e + 1):match("[%.!?]") do e = e + 1 end
      while e + 1 <= b and text:sub(e + 1, e + 1):match("[\"')%]]") do e = e + 1 end
      -- closing curly quotes ” ’ (U+201D, U+2019)
      while e + 3 <= b and (text:sub(e + 1, e + 3) == "\226\128\157" or
                            text:sub(e + 1, e + 3) == "\226\128\153") do e = e + 3 end
      local after = text:sub(e + 1, e + 1)
      if e < b and after:match("[ \t\r\f\v]") and ends_sentence(text, p, e) then
        out[#out + 1] = { s = start, e = e }
        start = text:find("[^ \t\r\f\v]", e + 1)
        pos = start
      else
        pos = e + 1
      end
    end
  end
  if start and start <= b then out[#out + 1] = { s = start, e = b } end
end

-- Non-blank lines as trimmed spans.
local function lines(text)
  local out = {}
  local pos = 1
  local n = #text
  while pos <= n do
    local nl = text:find("\n", pos, true) or n + 1
    local a = text:find("[^%s]", pos)
    if a and a < nl then
      local b = nl - 1
      while b > a and text:sub(b, b):match("%s") do b = b - 1 end
      out[#out + 1] = { s = a, e = b }
    end
    pos = nl + 1
  end
  return out
end

function M.sentences(text)
  local out = {}
  for _, l in ipairs(lines(text)) do line_sentences(text, l.s, l.e, out) end
  return out
end

M.lines = lines

-- Paragraphs: runs of non-blank lines.
function M.paragraphs(text)
  local out = {}
  local cur
  local ls = lines(text)
  for i, l in ipairs(ls) do
    if cur and not text:sub(ls[i - 1].e + 1, l.s - 1):find("\n[ \t\r\f\v]*\n") then
      cur.e = l.e
    else
      cur = { s = l.s, e = l.e }
      out[#out + 1] = cur
    end
  end
  return out
end

-- Chunks: consecutive sentences packed while their tokens (count(text))
-- stay within max_tokens; a longer sentence is a chunk of its own.
function M.chunks(text, max_tokens, count)
  local out = {}
  local cur, cur_n
  for _, u in ipairs(M.sentences(text)) do
    local n = count(text:sub(u.s, u.e))
    if cur and cur_n + 1 + n <= max_tokens then
      cur.e = u.e
      cur_n = cur_n + 1 + n -- about one token for the separator
    else
      cur = { s = u.s, e = u.e }
      cur_n = n
      out[#out + 1] = cur
    end
  end
  return out
end

--- split(text, unit, opts) -> list of spans. unit: "sentence" |
-- "paragraph" | "line" | "chunk" (opts.chunk_tokens, opts.count).
function M.split(text, unit, opts)
  if unit == "sentence" then return M.sentences(text) end
  if unit == "paragraph" then return M.paragraphs(text) end
  if unit == "line" then return lines(text) end
  if unit == "chunk" then return M.chunks(text, opts.chunk_tokens, opts.count) end
  error("unknown unit '" .. tostring(unit) .. "'", 3)
end

-- The separator to put between two kept units a and b (indices into
-- units, a < b): the original whitespace between them when adjacent;
-- else the strongest break among the gaps skipped, so a paragraph break
-- between them survives the units dropped around it: "\n\n" when one
-- of the gaps holds a blank line, "\n" when one holds a line break,
-- else " ".
local function separator(text, units, a, b)
  if b == a + 1 then return text:sub(units[a].e + 1, units[b].s - 1) end
  local most = 0
  for i = a, b - 1 do
    local _, nl = text:sub(units[i].e + 1, units[i + 1].s - 1):gsub("\n", "")
    if nl > most then most = nl end
  end
  if most >= 2 then return "\n\n" end
  if most == 1 then return "\n" end
  return " "
end

--- join(text, units, keep) -> the text of the kept units (keep[i] true)
-- in their original order, with the whitespace around them as described
-- for `separator`; the text's leading and trailing whitespace stays.
function M.join(text, units, keep)
  local out = {}
  local last
  for i, u in ipairs(units) do
    if keep[i] then
      if last then out[#out + 1] = separator(text, units, last, i) end
      out[#out + 1] = text:sub(u.s, u.e)
      last = i
    end
  end
  if not last then return "" end
  local lead = units[1] and text:sub(1, units[1].s - 1) or ""
  local trail = units[#units] and text:sub(units[#units].e + 1) or ""
  return lead .. table.concat(out) .. trail
end

return M
