-- Filler-phrase removal for llm.compress.filler: the phrase lists and the
-- rewriting, outside quotes and code.
--
-- Three lists, matched case-insensitively on word boundaries:
--   * M.openers: phrases removed at the start of a sentence (with the
--     comma and spaces after them); the next word is capitalised when it
--     is all lower case ("It is important to note that the office..." ->
--     "The office..."). Repeated openers go too ("As mentioned earlier,
--     it is important to note that X" -> "X").
--   * M.sentences: whole sentences of chat boilerplate removed with the
--     space after them ("I hope this helps!").
--   * M.rewrites: wordy phrases replaced anywhere by a shorter one of the
--     same meaning ("in order to" -> "to"), keeping a leading capital.
-- Protected (never changed): fenced code blocks (``` or ~~~), inline
-- code (`...`), and text in double quotes ("...", “...”), a quote running
-- at most to the end of its paragraph. Text in single quotes is NOT
-- protected: an apostrophe cannot be told from a quote.
local M = {}

M.openers = {
  "it is important to note that", "it's important to note that",
  "it is important to remember that", "it is worth noting that",
  "it is worth mentioning that", "it should be noted that", "it must be noted that",
  "please note that", "please be aware that", "be aware that",
  "as mentioned earlier,", "as mentioned above,", "as mentioned before,",
  "as previously mentioned,", "as noted above,", "as noted earlier,", "as stated above,",
  "as stated earlier,", "needless to say,", "for the avoidance of doubt,",
  "in general,", "generally speaking,", "basically,", "basically",
  "of course,", "obviously,", "to be honest,", "honestly,", "frankly,",
  "as an ai language model,", "as an ai model,", "as an ai assistant,", "as an ai,",
  "i would like to point out that",
}

M.sentences = {
  "i hope this helps", "hope this helps", "i hope that helps",
  "let me know if you have any other questions", "let me know if you have any questions",
  "let me know if you have any further questions", "feel free to ask if you have any questions",
  "feel free to ask if you have any other questions", "great question", "good question",
  "thank you for your question", "thanks for asking",
}

M.rewrites = {
  { "due to the fact that", "because" }, { "owing to the fact that", "because" },
  { "in spite of the fact that", "although" }, { "despite the fact that", "although" },
  { "at this point in time", "now" }, { "at the present time", "now" },
  { "in the event that", "if" }, { "for the purpose of", "for" },
  { "in order to", "to" }, { "each and every", "every" }, { "first and foremost", "first" },
  { "a large number of", "many" }, { "the majority of", "most" },
}

-- "in order to" -> a Lua pattern matching any case, on word boundaries.
local function ci_pattern(phrase)
  local p = phrase:gsub("%a", function(c) return "[" .. c:lower() .. c:upper() .. "]" end)
  p = p:gsub("([%.%-%(%)%+%*%?%^%$])", "%%%1"):gsub("'", "['\226\128\153]")
  p = p:gsub(" ", "%%s+")
  local first_alpha = phrase:sub(1, 1):match("%a")
  return (first_alpha and "%f[%w]" or "") .. p .. (phrase:sub(-1):match("%a") and "%f[%W]" or "")
end

local compiled
local function compile()
  if compiled then return compiled end
  local c = { openers = {}, sentences = {}, rewrites = {} }
  -- longest first, so "as an ai language model," wins over "as an ai,"
  local openers = { table.unpack(M.openers) }
  table.sort(openers, function(a, b) return #a > #b end)
  for _, p in ipairs(openers) do c.openers[#c.openers + 1] = { p, "^" .. ci_pattern(p) .. "[ \t]*" } end
  for _, p in ipairs(M.sentences) do
    c.sentences[#c.sentences + 1] = { p, "^" .. ci_pattern(p) .. "[%.!]+" }
  end
  for _, r in ipairs(M.rewrites) do
    -- the phrase's longest word: a plain search for it in the lower-cased
    -- text skips the (slower) pattern for texts that cannot match
    local key = ""
    for w in r[1]:gmatch("%a+") do if #w > #key then key = w end end
    c.rewrites[#c.rewrites + 1] = { r[1], ci_pattern(r[1]), r[2], key }
  end
  compiled = c
  return c
end

-- Adds the user's extra openers (a list of phrases) for one call.
local function with_extra(extra)
  local c = compile()
  if not extra or #extra == 0 then return c end
  local copy = { openers = {}, sentences = c.sentences, rewrites = c.rewrites }
  for _, p in ipairs(extra) do
    copy.openers[#copy.openers + 1] = { p:lower(), "^" .. ci_pattern(p:lower()) .. "[ \t]*" }
  end
  for _, o in ipairs(c.openers) do copy.openers[#copy.openers + 1] = o end
  table.sort(copy.openers, function(a, b) return #a[1] > #b[1] end)
  return copy
end

-- ---- protected regions ---------------------------------------------------------

-- Is p the first non-space byte of its line (at most 3 spaces before it)?
local function at_line_start(s, p)
  local j, k = p - 1, 0
  while j >= 1 and k < 3 and s:byte(j) == 32 do j, k = j - 1, k + 1 end
  return j == 0 or s:byte(j) == 10
end

-- Splits s into a list of {text, protected} pieces.
local function segments(s)
  local out = {}
  local free_start = 1
  local pos, n = 1, #s
  local function protect(a, b)
    if a > free_start then out[#out + 1] = { s:sub(free_start, a - 1), false } end
    out[#out + 1] = { s:sub(a, b), true }
    free_start = b + 1
  end
  while pos <= n do
    local p = s:find('[`~"\226]', pos)
    if not p then break end
    local c = s:sub(p, p)
    local fence = at_line_start(s, p) and s:match("^([`~][`~][`~]+)", p)
    if fence and not fence:find(c == "`" and "~" or "`", 1, true) then
      -- up to the closing fence line, or to the end
      local close = s:find("\n[ ]?[ ]?[ ]?" .. fence:gsub("%p", "%%%0"), p + #fence, false)
      local b = n
      if close then b = (s:find("\n", close + 1, true) or n + 1) - 1 end
      protect(p, b)
      pos = b + 1
    elseif c == "`" then
      local ticks = s:match("^`+", p)
      local close = s:find(ticks, p + #ticks, true)
      local nl = s:find("\n", p, true)
      if close and (not nl or close < nl) then
        protect(p, close + #ticks - 1)
        pos = close + #ticks
      else
        pos = p + #ticks
      end
    elseif c == '"' or s:sub(p, p + 2) == "\226\128\156" then -- " or “
      local qlen = c == '"' and 1 or 3
      local close_pat = c == '"' and '"' or "\226\128\157"
      local para = s:find("\n[ \t]*\n", p) or n + 1
      local close = s:find(close_pat, p + qlen, true)
      local b = (close and close < para) and close + #close_pat - 1 or para - 1
      protect(p, b)
      pos = b + 1
    else
      pos = p + 1
    end
  end
  if free_start <= n then out[#out + 1] = { s:sub(free_start), false } end
  return out
end

-- ---- rewriting one free segment ----------------------------------------------------

-- Does a sentence start at position i of seg? `at_text_start` says
-- whether seg's first byte starts the whole text or a line. Looks back
-- a few bytes only, so a long text is scanned in linear time.
local function sentence_start(seg, i, at_text_start)
  local j = i - 1
  while j >= 1 and (seg:byte(j) == 32 or seg:byte(j) == 9) do j = j - 1 end
  if j == 0 then return at_text_start end
  local c = seg:sub(j, j)
  if c:match("[\n%.!?:]") then return true end
  if c:match("[-*+)]") then -- a list marker: "- ", "* ", "+ ", "1) "
    local line = seg:sub(math.max(1, j - 12), j)
    if line:match("\n[ \t]*[-*+]$") or line:match("\n[ \t]*%d+%)$") then return true end
    if j <= 12 and at_text_start and (line:match("^[ \t]*[-*+]$") or line:match("^[ \t]*%d+%)$")) then
      return true
    end
  end
  return false
end

local function capitalise_next(seg, i)
  local word = seg:match("^%a+", i)
  if word and word == word:lower() then
    return seg:sub(1, i - 1) .. word:sub(1, 1):upper() .. seg:sub(i + 1)
  end
  return seg
end

local function count_into(removed, phrase)
  removed[phrase] = (removed[phrase] or 0) + 1
  removed.total = removed.total + 1
end

local function rewrite_segment(seg, at_text_start, c, removed)
  local i = 1
  while true do
    -- the next candidate: a letter at a sentence start
    local p = seg:find("%f[%w]%a", i)
    if not p then break end
    if sentence_start(seg, p, at_text_start) then
      local changed = false
      -- whole boilerplate sentences
      for _, s in ipairs(c.sentences) do
        local a, e = seg:find(s[2], p)
        if a and (e == #seg or seg:sub(e + 1, e + 1):match("%s")) then
          local _, sp = seg:find("^[ \t]*", e + 1)
          local head = seg:sub(1, p - 1)
          local tail = seg:sub(sp + 1)
          -- the last sentence of its line: no spaces left dangling before it
          if tail == "" or tail:sub(1, 1) == "\n" then head = head:gsub("[ \t]+$", "") end
          seg = head .. tail
          i = math.min(i, #head + 1)
          count_into(removed, s[1])
          changed = true
          break
        end
      end
      -- openers, repeatedly at the same place
      if not changed then
        for _, o in ipairs(c.openers) do
          local a, e = seg:find(o[2], p)
          -- an opener must leave a word to start the sentence with
          if a and seg:find("^[%w\128-\255\"'%(%[]", e + 1) then
            seg = capitalise_next(seg:sub(1, p - 1) .. seg:sub(e + 1), p)
            count_into(removed, o[1])
            changed = true
            break
          end
        end
      end
      if not changed then i = p + 1 end
    else
      i = p + 1
    end
  end
  local lower = seg:lower()
  for _, r in ipairs(c.rewrites) do
    if lower:find(r[4], 1, true) then
      seg = seg:gsub(r[2], function(m)
        count_into(removed, r[1])
        if m:sub(1, 1):match("%u") then return r[3]:sub(1, 1):upper() .. r[3]:sub(2) end
        return r[3]
      end)
    end
  end
  return seg
end

--- remove(text, extra_openers) -> text, removed = {total=, [phrase]=count}
function M.remove(text, extra)
  local c = with_extra(extra)
  local removed = { total = 0 }
  local out = {}
  for k, seg in ipairs(segments(text)) do
    if seg[2] then
      out[k] = seg[1]
    else
      -- after a protected piece, a sentence starts when that piece ended
      -- one (a quoted sentence: "...closed.") or a line
      local prev = out[k - 1]
      local at_start = k == 1 or (prev ~= nil and (prev:sub(-1) == "\n"
        or prev:match("[%.!?][\"')]?$") ~= nil or prev:match("[%.!?]\226\128\157$") ~= nil))
      out[k] = rewrite_segment(seg[1], at_start, c, removed)
    end
  end
  return table.concat(out), removed
end

M.segments = segments
return M
