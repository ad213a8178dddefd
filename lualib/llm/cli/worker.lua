-- llmrun worker [--name NAME] [--wait SECONDS] URL SCRIPT [ARGS...]
-- Serves the experiments of SCRIPT that a coordinator (the same script run
-- with --workers URL) enqueued on Redis at URL: the script runs here as it
-- does there, and each llm.experiment in it serves cases instead of
-- running them all (llm.experiment_workers). Exits when the script ends.
local M = {
  summary = "serve a script's experiments from Redis (llmrun worker redis://host/0 exp.lua)",
}

local usage = [[
usage: llmrun worker [--name NAME] [--wait SECONDS] URL SCRIPT [ARGS...]

Runs SCRIPT as a worker of the experiments that the same script, started
elsewhere with --workers URL, puts on the Redis at URL (redis://host:6379/0).
Every llm.experiment in the script takes cases from Redis, runs them and
sends their results back; when the coordinator has them all, the worker
builds the same report and the script goes on as it does there. Start as
many workers as you like, on any host with the script and its data; one
that dies leaves its cases to the others.

  --name NAME      this worker's name in progress and reports
                   (default: host name and a random suffix)
  --wait SECONDS   how long to wait for the coordinator (to enqueue an
                   experiment, or to show a sign of life) and for an
                   unreachable Redis, before giving up (default 300)
  -h, --help       print this help
]]

local function usage_error(msg)
  io.stderr:write("llmrun worker: ", msg, "\nTry 'llmrun worker --help' for more information.\n")
  return 2
end

local function host_name()
  local f = io.open("/proc/sys/kernel/hostname")
  local h = f and f:read("l")
  if f then f:close() end
  return (h and h ~= "") and h or "worker"
end

function M.main(args)
  local name, wait
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "-h" or a == "--help" then
      io.stdout:write(usage)
      return 0
    elseif a == "--name" or a == "--wait" then
      local v = args[i + 1]
      if not v then return usage_error("option '" .. a .. "' needs an argument") end
      if a == "--name" then
        name = v
      else
        wait = tonumber(v)
        if not wait or wait < 0 then return usage_error("--wait needs a number of seconds") end
      end
      i = i + 2
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      return usage_error("unknown option '" .. a .. "'")
    else
      break
    end
  end
  local url, script = args[i], args[i + 1]
  if not url or not script then return usage_error("a Redis URL and a script are needed") end
  local parsed, why = require("_llm.redis").parse_url(url)
  if not parsed then return usage_error(why.message) end
  local ok, err = require("_llm.redis").available()
  if not ok then
    io.stderr:write("llmrun worker: ", err, "\n")
    return 1
  end
  local chunk, lerr = loadfile(script)
  if not chunk then
    io.stderr:write("llmrun worker: ", lerr, "\n")
    return 1
  end
  local script_args = {}
  for j = i + 2, #args do script_args[#script_args + 1] = args[j] end
  local old = rawget(_G, "arg")
  local a = { [0] = script, [-1] = type(old) == "table" and old[-1] or nil }
  for j, v in ipairs(script_args) do a[j] = v end
  rawset(_G, "arg", a)
  local workers = require "llm.experiment_workers"
  workers.enable_worker {
    url = url, wait = wait,
    name = name or (host_name() .. "-" .. require("_llm.calllog").new_run_id():sub(-6)),
  }
  chunk(table.unpack(script_args))
  if workers.ordinal() == 0 then
    io.stderr:write("llmrun worker: ", script, " ran no llm.experiment: there was nothing to serve\n")
    return 1
  end
  return 0
end

return M
