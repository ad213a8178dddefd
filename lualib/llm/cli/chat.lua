-- llmrun chat: a conversation at the terminal, with its history sent on
-- every turn. /exit, /model NAME, /system TEXT, /clear, /help.
local cli = require "llm.cli"
local prompt = require "llm.cli.prompt"

local C = {}
C.summary = "talk with a model, keeping the conversation"
C.usage = [[
usage: llmrun chat [-m MODEL] [-s SYSTEM] [-n]

Reads your messages from stdin, one per line, and streams each answer.
Commands: /exit, /model NAME, /system TEXT, /clear (forget the history), /help.
-n, --no-log: do not record the calls in the call log.
]]

local spec = { ["-m"] = "model", ["--model"] = "model", ["-s"] = "system", ["--system"] = "system",
               ["-n"] = true, ["--no-log"] = true }

function C.main(args)
  local opts, rest = cli.parse(args, spec)
  if #rest > 0 then cli.usage_error("unexpected argument %s", rest[1]) end
  if opts.n or opts.no_log then llm.log.off() end
  local m = llm.model(opts.model or "gpt-4o-mini")
  local system = opts.system
  local history = {}
  local tty = require("_llm.host").isatty("stdin")
  if tty then
    io.stderr:write(("chatting with %s; /help for commands, /exit or Ctrl-D to leave\n"):format(m.name))
  end
  while true do
    if tty then io.stderr:write("you> ") end
    local line = io.stdin:read("l")
    if line == nil or line == "/exit" or line == "/quit" then break end
    local cmd, arg = line:match("^/(%w+)%s*(.*)$")
    if cmd == "model" and arg ~= "" then
      m = llm.model(arg)
      io.stderr:write("model: ", m.name, " (", m.provider, ")\n")
    elseif cmd == "system" then
      system = arg ~= "" and arg or nil
      io.stderr:write(system and "system prompt set\n" or "system prompt cleared\n")
    elseif cmd == "clear" then
      history = {}
      io.stderr:write("history cleared\n")
    elseif cmd == "help" then
      io.stderr:write(C.usage)
    elseif cmd then
      io.stderr:write("unknown command /", cmd, " (/help lists them)\n")
    elseif line:match("%S") then
      history[#history + 1] = { role = "user", content = line }
      local r, err = m:stream({ messages = history, system = system }, {
        on_delta = function(d) io.stdout:write(d.text); io.stdout:flush() end })
      io.stdout:write("\n")
      if r then
        history[#history + 1] = { role = "assistant", content = r.text }
        if tty then io.stderr:write(prompt.summary_line(r), "\n") end
      else
        table.remove(history) -- the turn failed; let the user retry it
        io.stderr:write("llmrun: ", tostring(err), "\n")
      end
    end
  end
  return 0
end

return C
