-- llm.data: experiment cases from files.
--
--   local cases = assert(llm.data.jsonl "examples/data/context_qa.jsonl")
--   local rows  = assert(llm.data.csv("cases.csv", { limit = 50 }))
--   local few   = llm.data.sample(cases, 20, 7)   -- 20 of them, seed 7
--
-- jsonl: one JSON object per line; blank lines are skipped. csv: RFC 4180
-- (https://www.rfc-editor.org/rfc/rfc4180): the first record names the
-- fields; fields are strings; a field in double quotes may hold commas,
-- line breaks and "" for a quote; CRLF or LF line ends; a UTF-8 byte order
-- mark is dropped; blank lines are skipped.
-- A bad file returns nil, err: an llm.error of kind "data" whose message
-- starts with "file:line:" and whose fields are path and line.
local cjson = require "cjson"
local errors = require "llm.errors"

local M = {}

local function bad(path, line, msg)
  return nil, errors.new("data", ("%s:%d: %s"):format(path, line, msg), { path = path, line = line })
end

local function check_args(fname, path, opts)
  if type(path) ~= "string" or path == "" then
    error(("bad argument #1 to 'llm.data.%s' (file path expected, got %s)"):format(fname, type(path)), 3)
  end
  if opts ~= nil and type(opts) ~= "table" then
    error(("bad argument #2 to 'llm.data.%s' (table expected, got %s)"):format(fname, type(opts)), 3)
  end
  opts = opts or {}
  if opts.limit ~= nil and (math.type(opts.limit) ~= "integer" or opts.limit < 0) then
    error(("llm.data.%s: limit must be an integer >= 0"):format(fname), 3)
  end
  return opts
end

local function read_all(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, errors.new("data", "cannot open " .. tostring(err), { path = path }) end
  local text = f:read("a")
  f:close()
  if text == nil then return nil, errors.new("data", "cannot read " .. path, { path = path }) end
  if text:sub(1, 3) == "\239\187\191" then text = text:sub(4) end -- UTF-8 BOM
  return text
end

-- ---- JSON Lines ----------------------------------------------------------------

--- llm.data.jsonl(path [, opts]) -> list of tables | nil, err
-- opts.limit: read at most that many records.
function M.jsonl(path, opts)
  opts = check_args("jsonl", path, opts)
  local text, err = read_all(path)
  if not text then return nil, err end
  local list, lineno, limit = {}, 0, opts.limit
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    lineno = lineno + 1
    if limit and #list >= limit then break end
    line = line:gsub("\r$", "")
    if line:find("%S") then
      local ok, v = pcall(cjson.decode, line)
      if not ok then return bad(path, lineno, "invalid JSON: " .. tostring(v)) end
      local first = line:match("^%s*(.)")
      if first ~= "{" then
        local what = first == "[" and "an array" or first == '"' and "a string"
          or (first == "t" or first == "f") and "a boolean" or first == "n" and "null" or "a number"
        return bad(path, lineno, "expected a JSON object, got " .. what)
      end
      list[#list + 1] = v
    end
  end
  return list
end

-- ---- CSV (RFC 4180) ---------------------------------------------------------------

-- Splits text into records of fields. Returns records, each with .line
-- (where it starts), or nil, line, message.
local function parse_csv(text)
  local records = {}
  local pos, n, line = 1, #text, 1
  while pos <= n do
    local rec, start_line = {}, line
    local blank = true
    while true do -- one field per turn
      local c = text:sub(pos, pos)
      local field
      if c == '"' then
        blank = false
        local parts, i = {}, pos + 1
        local open_line = line
        while true do
          local q = text:find('"', i, true)
          if not q then return nil, open_line, "a quoted field is not closed" end
          local chunk = text:sub(i, q - 1)
          local _, nl = chunk:gsub("\n", "")
          line = line + nl
          parts[#parts + 1] = chunk
          if text:sub(q + 1, q + 1) == '"' then
            parts[#parts + 1] = '"'
            i = q + 2
          else
            pos = q + 1
            break
          end
        end
        field = table.concat(parts)
        local after = text:sub(pos, pos)
        if after ~= "," and after ~= "\n" and after ~= "\r" and after ~= "" then
          return nil, line, ("unexpected %q after a closing quote (a quote inside a field is written \"\")")
            :format(after)
        end
      else
        local e = text:find("[,\r\n]", pos) or (n + 1)
        field = text:sub(pos, e - 1)
        if field:find('"', 1, true) then
          return nil, line, "a quote in an unquoted field (quote the whole field and write \"\" for a quote)"
        end
        if field ~= "" then blank = false end
        pos = e
      end
      rec[#rec + 1] = field
      local sep = text:sub(pos, pos)
      if sep == "," then
        blank = false
        pos = pos + 1
      else -- end of record: \r\n, \n, \r or the end of the text
        if sep == "\r" and text:sub(pos + 1, pos + 1) == "\n" then pos = pos + 2
        elseif sep ~= "" then pos = pos + 1
        else pos = n + 1 end
        line = line + 1
        break
      end
    end
    if not blank then
      rec.line = start_line
      records[#records + 1] = rec
    end
  end
  return records
end

--- llm.data.csv(path [, opts]) -> list of tables (header -> field) | nil, err
-- opts.limit: read at most that many records (after the header).
function M.csv(path, opts)
  opts = check_args("csv", path, opts)
  local text, err = read_all(path)
  if not text then return nil, err end
  local records, line, msg = parse_csv(text)
  if not records then return bad(path, line, msg) end
  local header = records[1]
  if not header then return bad(path, 1, "the file is empty: a header row naming the fields is needed") end
  local seen = {}
  for i, name in ipairs(header) do
    if name == "" then return bad(path, header.line, ("header field %d is empty"):format(i)) end
    if seen[name] then return bad(path, header.line, ("header field %q appears twice"):format(name)) end
    seen[name] = true
  end
  local list, limit = {}, opts.limit
  for r = 2, #records do
    if limit and #list >= limit then break end
    local rec = records[r]
    if #rec ~= #header then
      return bad(path, rec.line, ("expected %d fields (as the header), got %d"):format(#header, #rec))
    end
    local row = {}
    for i, name in ipairs(header) do row[name] = rec[i] end
    list[#list + 1] = row
  end
  return list
end

-- ---- sampling ---------------------------------------------------------------------

--- llm.data.sample(list, n [, seed]) -> n items of list chosen at random
-- without replacement, in their original order. The same seed (default 1)
-- gives the same sample on every machine (its own generator, not
-- math.random). n >= #list returns a copy of the list.
function M.sample(list, n, seed)
  if type(list) ~= "table" then
    error("bad argument #1 to 'llm.data.sample' (table expected, got " .. type(list) .. ")", 2)
  end
  if math.type(n) ~= "integer" or n < 0 then
    error("bad argument #2 to 'llm.data.sample' (integer >= 0 expected)", 2)
  end
  if seed ~= nil and math.type(seed) ~= "integer" then
    error("bad argument #3 to 'llm.data.sample' (integer seed expected)", 2)
  end
  local total = #list
  local idx = {}
  for i = 1, total do idx[i] = i end
  -- xorshift64*: small, seedable, the same everywhere (Lua integers are 64-bit)
  local s = (seed or 1) ~ 0x2545F4914F6CDD1D
  if s == 0 then s = 1 end
  local function rand(k)
    s = s ~ (s >> 12); s = s ~ (s << 25); s = s ~ (s >> 27)
    return ((s * 0x2545F4914F6CDD1D) >> 11) % k + 1
  end
  local take = math.min(n, total)
  for i = 1, take do -- partial Fisher-Yates
    local j = i + rand(total - i + 1) - 1
    idx[i], idx[j] = idx[j], idx[i]
  end
  local chosen = {}
  for i = 1, take do chosen[i] = idx[i] end
  table.sort(chosen)
  local out = {}
  for i, k in ipairs(chosen) do out[i] = list[k] end
  return out
end

return M
