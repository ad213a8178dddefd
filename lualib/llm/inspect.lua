-- Readable one-value dumps for the REPL and for debugging: tables are
-- shown as constructors, keys sorted, nested tables to a depth limit,
-- cycles marked, long tables elided.
local M = {}

local DEFAULT_DEPTH, DEFAULT_ITEMS = 3, 40

local function is_identifier(k)
  return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil
end

local type_order = { number = 1, string = 2, boolean = 3 }

local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return (type_order[ta] or 9) < (type_order[tb] or 9) end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function scalar(v)
  local t = type(v)
  if t == "string" then return ("%q"):format(v):gsub("\\\n", "\\n") end
  if t == "number" and math.type(v) == "float" and v == math.floor(v) and v == v
     and math.abs(v) < 2^53 then
    return ("%.1f"):format(v)
  end
  return tostring(v)
end

-- A long list of numbers (an embedding vector): its first few and its length.
local VECTOR_SHOWN = 4
local function number_list(v, n)
  if n <= 2 * VECTOR_SHOWN then return nil end
  for i = 1, n do if type(v[i]) ~= "number" then return nil end end
  if next(v, n) ~= nil and not (math.type(next(v, n)) == "integer") then return nil end
  local parts = {}
  for i = 1, VECTOR_SHOWN do parts[i] = ("%.4g"):format(v[i]) end
  return ("{ %s, ... (%d numbers) }"):format(table.concat(parts, ", "), n)
end

local function dump(v, depth, opts, seen, indent)
  if type(v) ~= "table" then return scalar(v) end
  local mt = getmetatable(v)
  -- a response shows its fields (print(r) gives its text)
  local is_response = mt and mt.__name == "llm.response"
  if mt and mt.__tostring and not is_response then return tostring(v) end
  if seen[v] then return "<cycle>" end
  if depth >= opts.depth then return "{...}" end
  local n = #v
  local vector = number_list(v, n)
  if vector then return vector end
  seen[v] = true

  local keys = {}
  for k in pairs(v) do
    -- a response's private fields (its raw body, kept as one string) stay out
    if not (math.type(k) == "integer" and k >= 1 and k <= n)
       and not (is_response and type(k) == "string" and k:sub(1, 1) == "_") then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys, key_less)

  local items, shown = {}, 0
  local pad = indent .. "  "
  for i = 1, n do
    if shown >= opts.items then break end
    items[#items + 1] = dump(v[i], depth + 1, opts, seen, pad)
    shown = shown + 1
  end
  for _, k in ipairs(keys) do
    if shown >= opts.items then break end
    local ks = is_identifier(k) and k or ("[" .. scalar(k) .. "]")
    items[#items + 1] = ks .. " = " .. dump(v[k], depth + 1, opts, seen, pad)
    shown = shown + 1
  end
  local total = n + #keys
  if total > shown then items[#items + 1] = ("... (%d more)"):format(total - shown) end
  seen[v] = nil

  local prefix = is_response and "llm.response " or ""
  if #items == 0 then return prefix .. "{}" end
  local flat = "{ " .. table.concat(items, ", ") .. " }"
  if #flat <= 72 and not flat:find("\n") and not is_response then return flat end
  return prefix .. "{\n" .. pad .. table.concat(items, ",\n" .. pad) .. "\n" .. indent .. "}"
end

--- llm.inspect(value [, {depth=3, items=40}]) -> string
function M.inspect(v, opts)
  opts = opts or {}
  local o = { depth = opts.depth or DEFAULT_DEPTH, items = opts.items or DEFAULT_ITEMS }
  return dump(v, 0, o, {}, "")
end

-- The REPL prints each result of a line, tab-separated like print().
function M.repl_print(...)
  local n = select("#", ...)
  local out = {}
  for i = 1, n do out[i] = M.inspect((select(i, ...))) end
  io.stdout:write(table.concat(out, "\t"), "\n")
end

return M
