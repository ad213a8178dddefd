-- llmrun tokens [-m MODEL | -e ENCODING] [--ids] [--special] [FILE|-]
-- Counts the tokens of a file (or stdin) as the model's tokenizer does,
-- or prints the token ids. Data on stdout, messages on stderr; exit 2 on
-- a usage error.
local M = {
  summary = "count tokens of a file or stdin (-m MODEL, -e ENCODING, --ids)",
}

local usage = [[
usage: llmrun tokens [-m MODEL | -e ENCODING] [--ids] [--special] [FILE|-]

Prints the number of tokens in FILE (stdin when absent or "-"), counted
exactly as OpenAI's tiktoken does for MODEL's encoding (default o200k_base).

  -m, --model MODEL        a model name: gpt-4o, gpt-4-0613, o3, ...
  -e, --encoding ENCODING  o200k_base, cl100k_base, p50k_base, p50k_edit,
                           r50k_base or gpt2
  --ids                    print the token ids (space-separated) instead
  --special                read special-token text (<|endoftext|>) as the
                           special token, not as ordinary text
  -h, --help               print this help
]]

local function usage_error(msg)
  io.stderr:write("llmrun tokens: ", msg, "\nTry 'llmrun tokens --help' for more information.\n")
  return 2
end

function M.main(args)
  local model, encoding, ids, special, file
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

  local text
  if file == nil or file == "-" then
    text = io.stdin:read("a")
  else
    local f, err = io.open(file, "rb")
    if not f then
      io.stderr:write("llmrun tokens: ", err, "\n")
      return 1
    end
    text = f:read("a")
    f:close()
  end
  if text == nil then
    io.stderr:write("llmrun tokens: cannot read ", file or "stdin", "\n")
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
