-- JSON minification for llm.compress.json: a validating scanner that
-- copies every token (strings, numbers, literals, punctuation) byte for
-- byte and drops the whitespace between them. Nothing is decoded and
-- re-encoded, so key order, number spelling (1.0, 1e3), escapes and
-- duplicate keys stay exactly as written: only formatting is lost.
--
-- The grammar is RFC 8259's: no comments, no trailing commas, no single
-- quotes, no NaN; anything else is "not JSON" and left alone. The scanner
-- is iterative (an explicit stack), so deep nesting cannot overflow.
local M = {}

local WS = "^[ \t\r\n]*"

local function skip_ws(s, i)
  local _, e = s:find(WS, i)
  return e + 1
end

-- A string token starting at i (a '"'): the position after it, or nil.
local function scan_string(s, i)
  local pos = i + 1
  while true do
    local p = s:find('[%z\1-\31"\\]', pos)
    if not p then return nil end
    local c = s:byte(p)
    if c == 34 then return p + 1 end -- '"'
    if c < 32 then return nil end    -- control characters must be escaped
    local esc = s:sub(p + 1, p + 1)
    if esc == "u" then
      if not s:find("^%x%x%x%x", p + 2) then return nil end
      pos = p + 6
    elseif esc ~= "" and ('"\\/bfnrt'):find(esc, 1, true) then
      pos = p + 2
    else
      return nil
    end
  end
end

-- A number token at i: the position after it, or nil.
local function scan_number(s, i)
  local _, e = s:find("^-?", i)
  local p = e + 1
  if s:sub(p, p) == "0" then
    p = p + 1
  else
    local _, d = s:find("^[1-9]%d*", p)
    if not d then return nil end
    p = d + 1
  end
  local _, f = s:find("^%.%d+", p)
  if f then p = f + 1 elseif s:sub(p, p) == "." then return nil end
  local _, x = s:find("^[eE][+-]?%d+", p)
  if x then p = x + 1 elseif s:find("^[eE]", p) then return nil end
  return p
end

local literals = { t = "true", f = "false", n = "null" }

--- value(s, i) -> minified text, position just after the value | nil
-- Scans one JSON value starting at i (leading whitespace allowed).
function M.value(s, i)
  local out, n = {}, 0
  local stack = {}
  local state = "value"
  local function emit(piece) n = n + 1; out[n] = piece end
  while true do
    local value_end = i
    i = skip_ws(s, i)
    local c = s:sub(i, i)
    if state == "value" or state == "key" then
      if c == '"' then
        local e = scan_string(s, i)
        if not e then return nil end
        emit(s:sub(i, e - 1))
        i = e
        if state == "key" then
          i = skip_ws(s, i)
          if s:sub(i, i) ~= ":" then return nil end
          emit(":")
          i = i + 1
          state = "value"
        else
          state = "after"
        end
      elseif state == "key" then
        return nil
      elseif c == "{" or c == "[" then
        stack[#stack + 1] = c
        emit(c)
        i = skip_ws(s, i + 1)
        local close = c == "{" and "}" or "]"
        if s:sub(i, i) == close then
          stack[#stack] = nil
          emit(close)
          i = i + 1
          state = "after"
        else
          state = c == "{" and "key" or "value"
        end
      elseif c == "-" or c:match("%d") then
        local e = scan_number(s, i)
        if not e then return nil end
        emit(s:sub(i, e - 1))
        i = e
        state = "after"
      elseif literals[c] and s:sub(i, i + #literals[c] - 1) == literals[c] then
        emit(literals[c])
        i = i + #literals[c]
        state = "after"
      else
        return nil
      end
    else -- after a value
      local top = stack[#stack]
      if not top then return table.concat(out), value_end end
      if c == "," then
        emit(",")
        i = i + 1
        state = top == "{" and "key" or "value"
      elseif c == (top == "{" and "}" or "]") then
        stack[#stack] = nil
        emit(c)
        i = i + 1
      else
        return nil
      end
    end
  end
end

--- whole(s) -> minified text | nil when s is not one JSON value.
function M.whole(s)
  local out, i = M.value(s, 1)
  if not out then return nil end
  if skip_ws(s, i) <= #s then return nil end
  return out
end

-- Is the line starting at `a` a code fence? Returns the fence ("```" or
-- "~~~" run) and the position after the line.
local function fence_at(s, a)
  local indent, f = s:match("^([ ]?[ ]?[ ]?)([`~][`~][`~]+)", a)
  if not f or f:find(f:sub(1, 1) == "`" and "~" or "`", 1, true) then return nil end
  return f, indent
end

--- embedded(s) -> text, count: minifies JSON inside s where that is safe:
-- the body of a fenced code block (``` or ~~~) that is one JSON value as a
-- whole, and, outside fences, a JSON object or array that starts a line
-- (after indentation) and ends at the end of a line. Everything else is
-- copied unchanged.
function M.embedded(s)
  local out, count = {}, 0
  local pos, n = 1, #s
  while pos <= n do
    local nl = s:find("\n", pos, true) or n
    local fence = fence_at(s, pos)
    if fence then
      -- find the closing fence: a line of the same character, at least as long
      local body_start = nl + 1
      local p, close_a, close_b = body_start, nil, nil
      while p <= n do
        local lnl = s:find("\n", p, true) or n
        local f2 = fence_at(s, p)
        if f2 and f2:sub(1, 1) == fence:sub(1, 1) and #f2 >= #fence
           and s:sub(p, lnl):match("^[ ]*[`~]+[ \t\r]*\n?$") then
          close_a, close_b = p, lnl
          break
        end
        p = lnl + 1
      end
      if not close_a then -- unclosed fence: the rest is code, left alone
        out[#out + 1] = s:sub(pos)
        break
      end
      out[#out + 1] = s:sub(pos, nl)
      local body = s:sub(body_start, close_a - 1)
      local min = body:find("[{%[]") and M.whole(body)
      if min then
        out[#out + 1] = min .. "\n"
        count = count + 1
      else
        out[#out + 1] = body
      end
      out[#out + 1] = s:sub(close_a, close_b)
      pos = close_b + 1
    else
      local ind_end = s:find("[^ \t]", pos) or n + 1
      local c = s:sub(ind_end, ind_end)
      local min, after
      if ind_end <= nl and (c == "{" or c == "[") then
        min, after = M.value(s, ind_end)
      end
      if min then
        -- the value must end its line: nothing but spaces until a newline
        local rest_end = s:find("\n", after, true) or n + 1
        if s:sub(after, rest_end - 1):match("^[ \t\r]*$") and #min < after - ind_end then
          out[#out + 1] = s:sub(pos, ind_end - 1) .. min
          count = count + 1
          pos = after
        else
          min = nil
        end
      end
      if not min then
        out[#out + 1] = s:sub(pos, nl)
        pos = nl + 1
      end
    end
  end
  return table.concat(out), count
end

return M
