-- Subcommands: `llmrun NAME args...` runs lualib/llm/cli/NAME.lua, whose
-- module returns {summary = "one line", main = function(args) ... end}.
-- main returns an exit status (nil means 0).
local M = {}

-- Listed here so --help can show them in this order.
M.names = { "serve" }

function M.run(name, args)
  local cmd = require("llm.cli." .. name)
  local status = cmd.main(args)
  if status ~= nil and status ~= 0 then llm.exit(status) end
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

return M
