-- Text from a server is untrusted: it may echo an API key back ("Incorrect
-- API key provided: sk-...") or carry terminal control sequences (an ESC
-- that recolours or clears the screen, an OSC that sets the window title,
-- a CR that overwrites the line before it). Two guards, used wherever
-- such text is kept or shown:
--   mask(s)    every configured key (add_secret) and every sk-/sk-ant-
--              shaped token becomes <redacted>: applied when an error
--              object is made (llm.errors), so the key never reaches an
--              error, stderr, the call log or a report;
--   escape(s)  control characters (C0 but tab, DEL, C1) and invalid UTF-8
--              bytes become visible escapes (\x1b, \r, \n, \u009b): applied
--              where text is printed (an error's tostring, the debug log).
local M = {}

-- Keys shorter than this are not masked: a key of "k" or "test" (local
-- servers that ignore the key) would blank every such letter in messages.
M.MIN_SECRET = 8

local secrets, nsecrets = {}, 0

--- Registers a secret (an API key) to mask from now on.
function M.add_secret(s)
  if type(s) ~= "string" or #s < M.MIN_SECRET or secrets[s] then return end
  secrets[s] = true
  nsecrets = nsecrets + 1
end

for _, name in ipairs { "OPENAI_API_KEY", "ANTHROPIC_API_KEY" } do
  M.add_secret(os.getenv(name))
end

local function replace_plain(s, what, with)
  local out, i = {}, 1
  while true do
    local a, b = s:find(what, i, true)
    if not a then break end
    out[#out + 1] = s:sub(i, a - 1)
    out[#out + 1] = with
    i = b + 1
  end
  if i == 1 then return s end
  out[#out + 1] = s:sub(i)
  return table.concat(out)
end

--- s with every secret masked; non-strings are returned as they are.
function M.mask(s)
  if type(s) ~= "string" then return s end
  if nsecrets > 0 then
    for secret in pairs(secrets) do
      if s:find(secret, 1, true) then s = replace_plain(s, secret, "<redacted>") end
    end
  end
  -- the shapes of OpenAI (sk-..., sk-proj-...) and Anthropic (sk-ant-...)
  -- keys: "sk-" and at least 16 more key characters
  if s:find("sk-", 1, true) then
    s = s:gsub("%f[%w_%-]sk%-[%w_%-]+", function(k)
      if #k >= 19 then return "<redacted>" end
    end)
  end
  return s
end

local named = { ["\r"] = "\\r", ["\n"] = "\\n", ["\27"] = "\\x1b" }

local function escape_slow(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local b = s:byte(i)
    if b < 0x80 then
      if (b < 0x20 and b ~= 9) or b == 0x7f then
        out[#out + 1] = named[string.char(b)] or ("\\x%02x"):format(b)
      else
        out[#out + 1] = string.char(b)
      end
      i = i + 1
    else
      local len = b >= 0xf0 and 4 or b >= 0xe0 and 3 or b >= 0xc0 and 2 or 1
      local seq = s:sub(i, i + len - 1)
      local ok, cp = pcall(utf8.codepoint, seq)
      if len > 1 and ok and utf8.len(seq) == 1 then
        if cp >= 0x80 and cp <= 0x9f then
          out[#out + 1] = ("\\u%04x"):format(cp)    -- C1 controls (CSI, OSC...)
        else
          out[#out + 1] = seq
        end
        i = i + len
      else
        out[#out + 1] = ("\\x%02x"):format(b)        -- not UTF-8
        i = i + 1
      end
    end
  end
  return table.concat(out)
end

--- s with control characters and invalid UTF-8 made visible, safe to
-- write to a terminal; non-strings are returned as they are.
function M.escape(s)
  if type(s) ~= "string" then return s end
  -- fast path: printable ASCII and tabs only
  if not s:find("[%z\1-\8\10-\31\127-\255]") then return s end
  -- valid UTF-8 with no control character is fine as it is
  if not s:find("[%z\1-\8\10-\31\127]") and utf8.len(s) and not s:find("\194[\128-\159]") then
    return s
  end
  return escape_slow(s)
end

--- mask then escape: remote text about to be shown.
function M.clean(s)
  return M.escape(M.mask(s))
end

--- The first max characters (default 200) of a body quoted in a message,
-- white space runs folded into one space, "..." when cut. (Masking and
-- escaping happen where the message is made and shown.)
function M.snippet(body, max)
  max = max or 200
  local s = tostring(body or ""):gsub("%s+", " ")
  if #s > max then s = s:sub(1, max) .. "..." end
  return s
end

return M
