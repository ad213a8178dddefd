-- llmrun tokens [-m MODEL | -e ENCODING] [--ids] [--special] [FILE|-]
-- Counts the tokens of a file (or stdin) as the model's tokenizer does,
-- or prints the token ids. Data on stdout, messages on stderr; exit 2 on
-- a usage error.
local M = {
  summary = "count tokens of a file or stdin (-m MODEL, -e ENCODING, --ids)",
}

local usage = [[
usage: llmrun tokens [-m MODEL | -e ENCODING] [--ids] [--special] [--max-bytes N] [FILE|-]

Prints the number of tokens in FILE (stdin when absent or "-"), counted
exactly as OpenAI's tiktoken does for MODEL's encoding (default o200k_base).
The input is read in pieces and refused past --max-bytes (default 64 MiB),
so an endless one (/dev/zero, a pipe that never ends) fails instead of
filling memory.

  -m, --model MODEL        a model name: gpt-4o, gpt-4-0613, o3, ...
  -e, --encoding ENCODING  o200k_base, cl100k_base, p50k_base, p50k_edit,
                           r50k_base or gpt2
  --ids                    print the token ids (space-separated) instead
  --special                read special-token text (<|endoftext|>) as the
                           special token, not as ordinary text
  --max-bytes N            the most input to read (suffix K, M or G: KiB,
                           MiB, GiB)
  -h, --help               print this help
]]

M.MAX_BYTES = 64 << 20

-- "64M" -> 67108864 (K, M, G are powers of 1024); nil when not a size.
local function parse_size(v)
  local n, unit = v:match("^(%d+)([KkMmGg]?)i?B?$")
  n = tonumber(n)
  if not n then return nil end
  local shift = ({ k = 10, m = 20, g = 30 })[unit:lower()] or 0
  return math.tointeger(n * (1 << shift))
end

-- Reads f in pieces, at most max bytes: the text, or nil and why.
local function read_capped(f, max, name)
  local parts, total = {}, 0
  while true do
    local piece, err = f:read(1 << 20)
    if piece == nil then
      if err then return nil, ("cannot read %s: %s"):format(name, err) end
      break
    end
    total = total + #piece
    if total > max then
      return nil, ("%s is larger than %d bytes, the limit of llmrun tokens (--max-bytes)")
        :format(name, max)
    end
    parts[#parts + 1] = piece
  end
  return table.concat(parts)
end

local function usage_error(msg)
  io.stderr:write("llmrun tokens: ", msg, "\nTry 'llmrun tokens --help' for more information.\n")
  return 2
end

function M.main(args)
  local model, encoding, ids, special, file
  local max_bytes = M.MAX_BYTES
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then
      io.stdout:write(usage)
      return 0
    elseif a == "-m" or a == "--model" or a == "-e" or a == "--encoding" then
      local v = args[i + 1]
      if not v then return usage_error("option '" .. a .. "' needs an argument") end
      if a == "-m" or a == "--model" then model = v else encoding = v end
      i = i + 1
    elseif a == "--max-bytes" then
      local v = args[i + 1]
      max_bytes = v and parse_size(v)
      if not max_bytes or max_bytes < 1 then
        return usage_error("--max-bytes needs a size such as 1000000, 512K or 64M")
      end
      i = i + 1
    elseif a == "--ids" then
      ids = true
    elseif a == "--special" then
      special = true
    elseif a ~= "-" and a:sub(1, 1) == "-" then
      return usage_error("unrecognized option '" .. a .. "'")
    elseif file then
      return usage_error("more than one file given")
    else
      file = a
    end
    i = i + 1
  end
  if model and encoding then return usage_error("give -m or -e, not both") end

  local tok = require "_llm.tok"
  local tokens = require "llm.tokens"
  local enc = encoding
  if enc then
    local known = false
    for _, name in ipairs(tok.encodings) do known = known or name == enc end
    if not known then
      return usage_error("unknown encoding '" .. enc .. "' (known: " .. table.concat(tok.encodings, ", ") .. ")")
    end
  else
    enc = model and tokens.encoding_for(model) or tokens.default_encoding
  end

  local text, rerr
  if file == nil or file == "-" then
    text, rerr = read_capped(io.stdin, max_bytes, "stdin")
  else
    local f, err = io.open(file, "rb")
    if not f then
      io.stderr:write("llmrun tokens: ", err, "\n")
      return 1
    end
    text, rerr = read_capped(f, max_bytes, file)
    f:close()
  end
  if text == nil then
    io.stderr:write("llmrun tokens: ", rerr, "\n")
    return 1
  end

  local out, err
  if ids then
    out, err = tok.ids_text(text, enc, special, " ")
  else
    out, err = tok.count(text, enc, special)
  end
  if out == nil then
    io.stderr:write("llmrun tokens: ", tostring(err), "\n")
    return 1
  end
  io.stdout:write(tostring(out), "\n")
  return 0
end

return M
