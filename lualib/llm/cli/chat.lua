-- llmrun chat: a conversation at the terminal, with its history sent on
-- every turn. Lines are read as the REPL reads them (src/repl.c: line
-- editing, a history of your lines in $XDG_STATE_HOME/llmrun/chat_history,
-- background work going on while the prompt waits); each line runs as a
-- task, so Ctrl-C during an answer cancels that answer (the turn is
-- forgotten, the conversation goes on) and Ctrl-D leaves.
local llm = require "llm"
local cli = require "llm.cli"
local prompt = require "llm.cli.prompt"

local C = {}
C.summary = "talk with a model, keeping the conversation"
C.usage = [[
usage: llmrun chat [-m MODEL] [-s SYSTEM] [-n]

A conversation with MODEL (default gpt-4o-mini; the simulator when no API
key is set): each line you type is sent with the conversation so far, and
the answer streams back. Line editing and history as in the REPL; Ctrl-C
during an answer cancels that answer (the conversation goes on); Ctrl-D
or /exit leaves. On a pipe, each input line is one message.

  -m, --model MODEL   the model, e.g. gpt-4o, sim/gpt-4o, anthropic/claude-3-5-haiku-latest
  -s, --system TEXT   a system prompt
  -n, --no-log        do not record the calls in the call log
  -h, --help          this help

Commands in the conversation:
  /model NAME    switch models (the conversation is kept)
  /system TEXT   set the system prompt (/system alone clears it)
  /clear         forget the conversation
  /cost          tokens and cost of this conversation so far
  /help          these commands
  /exit          leave (also Ctrl-D)
]]

local spec = { ["-m"] = "model", ["--model"] = "model", ["-s"] = "system", ["--system"] = "system",
               ["-n"] = true, ["--no-log"] = true }

local function commas(n)
  local s = ("%d"):format(n)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

--- The /cost line for a chat state: what its calls used and cost.
function C.cost_line(state)
  local s = state.tracker:stats()
  local parts = {}
  parts[#parts + 1] = ("%d answer%s"):format(state.answers, state.answers == 1 and "" or "s")
  if state.cancelled > 0 then parts[#parts + 1] = ("%d cancelled (not counted: no usage came back)"):format(state.cancelled) end
  if state.failed > 0 then parts[#parts + 1] = ("%d failed"):format(state.failed) end
  local cost
  if s.cost == nil then cost = "cost unknown (no price for the model)"
  else
    cost = ("$%.6f"):format(s.cost)
    if s.cost_unknown > 0 then cost = cost .. (" + %d call%s of unknown price"):format(s.cost_unknown,
      s.cost_unknown == 1 and "" or "s") end
  end
  local models = {}
  for name in pairs(state.models) do models[#models + 1] = name end
  table.sort(models)
  return ("this conversation: %s; %s tokens in (%s cached), %s out; %s%s\n"):format(table.concat(parts, ", "),
    commas(s.tokens.prompt), commas(s.tokens.cached), commas(s.tokens.completion), cost,
    #models > 0 and (" (" .. table.concat(models, ", ") .. ")") or "")
end

-- One line of input; returns false to leave.
local function turn(state, line)
  if line == "/exit" or line == "/quit" then return false end
  local cmd, arg = line:match("^/(%w+)%s*(.*)$")
  if cmd == "model" and arg ~= "" then
    state.model = llm.model(arg)
    io.stderr:write("model: ", state.model.name, " (", state.model.provider, ")\n")
  elseif cmd == "system" then
    state.system = arg ~= "" and arg or nil
    io.stderr:write(state.system and "system prompt set\n" or "system prompt cleared\n")
  elseif cmd == "clear" then
    state.history = {}
    io.stderr:write("history cleared\n")
  elseif cmd == "cost" then
    io.stdout:write(C.cost_line(state))
  elseif cmd == "help" then
    io.stderr:write(C.usage:match("Commands in the conversation:.*$"))
  elseif cmd then
    io.stderr:write("unknown command /", cmd, " (/help lists them)\n")
  elseif line:match("%S") then
    -- the turn joins the conversation only once answered: a cancelled or
    -- failed one leaves it as it was
    local messages = {}
    for i, msg in ipairs(state.history) do messages[i] = msg end
    messages[#messages + 1] = { role = "user", content = line }
    local done = false
    local _ <close> = setmetatable({}, { __close = function()
      if not done then -- cancelled (Ctrl-C): end the partial answer's line
        state.cancelled = state.cancelled + 1
        io.stdout:write("\n")
        io.stdout:flush()
      end
    end })
    local r, err = state.model:stream({ messages = messages, system = state.system }, {
      on_delta = function(d) io.stdout:write(d.text); io.stdout:flush() end })
    done = true
    io.stdout:write("\n")
    if r then
      state.answers = state.answers + 1
      state.models[state.model.name] = true
      messages[#messages + 1] = { role = "assistant", content = r.text }
      state.history = messages
      if state.tty then io.stderr:write(prompt.summary_line(r), "\n") end
    else
      state.failed = state.failed + 1
      io.stderr:write("llmrun: ", tostring(err), "\n")
    end
  end
  return true
end
C._turn = turn

function C.main(args)
  local opts, rest = cli.parse(args, spec)
  if #rest > 0 then cli.usage_error("unexpected argument %s", rest[1]) end
  if opts.n or opts.no_log then llm.log.off() end
  local state = {
    model = llm.model(opts.model or "gpt-4o-mini"), system = opts.system, history = {},
    tty = require("_llm.host").isatty("stdin"), answers = 0, cancelled = 0, failed = 0, models = {},
    tracker = llm.metrics.tracker("chat"),
  }
  state.tracker:start()
  if state.tty then
    io.stderr:write(("chatting with %s; /help for commands, Ctrl-C cancels an answer, /exit or Ctrl-D leaves\n")
      :format(state.model.name))
  end
  -- src/repl.c reads the lines and runs turn() for each, as a task
  cli.session = {
    handle = function(line) return turn(state, line) end,
    prompt = "you> ", history = "chat_history", interrupted = "(answer cancelled)",
  }
  return 0
end

return C
