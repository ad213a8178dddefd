-- Subcommands: `llmrun NAME args...` runs lualib/llm/cli/NAME.lua, whose
-- module returns {summary = "one line", usage = "text", main = function(args)}.
-- main returns an exit status (nil means 0). Usage errors exit 2. A
-- command that goes on reading lines (llmrun chat) sets M.session (see
-- src/repl.c) before main returns.
local errors = require "llm.errors"

local M = {}

-- In the order --help lists them.
M.names = { "prompt", "chat", "serve", "tokens", "logs", "report", "cache", "batch", "replay",
            "cassette", "worker" }

function M.run(name, args)
  local cmd = require("llm.cli." .. name)
  for _, a in ipairs(args) do
    -- a command without a usage field answers --help itself
    if (a == "-h" or a == "--help") and cmd.usage then
      io.stdout:write(cmd.usage)
      return
    end
  end
  local ok, status = pcall(cmd.main, args)
  if not ok then
    if type(status) == "table" and status.usage_error then
      io.stderr:write("llmrun ", name, ": ", status.message, "\n",
        "Try 'llmrun ", name, " --help'.\n")
      errors.exit(2)
    end
    error(status, 0)
  end
  if status ~= nil and status ~= 0 then errors.exit(status) end
end

function M.summary()
  local lines = {}
  for _, name in ipairs(M.names) do
    local ok, cmd = pcall(require, "llm.cli." .. name)
    if ok and type(cmd) == "table" then
      lines[#lines + 1] = ("  %-14s %s\n"):format(name, cmd.summary or "")
    end
  end
  return table.concat(lines)
end

--- Raises a usage error (exit status 2 with the message).
function M.usage_error(fmt, ...)
  error({ usage_error = true, message = fmt:format(...) }, 0)
end

--- Parses args against spec: {["-m"] = "model", ["--model"] = "model",
-- ["--json"] = true (flag)}; a string value names an option taking an
-- argument. "-o KEY VALUE" style options are declared as {name, 2}.
-- Returns options, positional arguments.
function M.parse(args, spec)
  local opts, rest = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local s = spec[a]
    if a == "--" then
      for j = i + 1, #args do rest[#rest + 1] = args[j] end
      break
    elseif s == true then
      opts[a:gsub("^%-+", ""):gsub("%-", "_")] = true
    elseif type(s) == "string" then
      if args[i + 1] == nil then M.usage_error("option %s needs an argument", a) end
      opts[s] = args[i + 1]
      i = i + 1
    elseif type(s) == "table" then
      if args[i + 2] == nil then M.usage_error("option %s needs two arguments", a) end
      opts[s[1]] = opts[s[1]] or {}
      opts[s[1]][args[i + 1]] = args[i + 2]
      i = i + 2
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      M.usage_error("unknown option %s", a)
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return opts, rest
end

--- Converts "-o key value" strings to numbers/booleans where they look so.
function M.coerce(v)
  if v == "true" then return true elseif v == "false" then return false end
  return tonumber(v) or v
end

--- Prints rows (lists of strings) under head as aligned columns, two
-- spaces apart, widths in characters (UTF-8), no trailing blanks.
function M.print_table(head, rows)
  local w = {}
  for i, h in ipairs(head) do w[i] = utf8.len(h) or #h end
  for _, r in ipairs(rows) do
    for i = 1, #head do w[i] = math.max(w[i], utf8.len(r[i] or "") or 0) end
  end
  local function line(r)
    local parts = {}
    for i = 1, #head do parts[i] = (r[i] or "") .. (" "):rep(w[i] - (utf8.len(r[i] or "") or 0)) end
    return (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  io.stdout:write(line(head), "\n")
  for _, r in ipairs(rows) do io.stdout:write(line(r), "\n") end
end

return M
