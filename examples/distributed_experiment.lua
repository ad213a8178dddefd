-- An experiment spread over worker processes through Redis: the same
-- before/after comparison as on one machine, its cases run by workers that
-- may sit on other hosts, and a worker that dies leaves its cases to the
-- others (README, "More than one machine").
--
-- The task: 600 arithmetic questions, the small model against the strong
-- one, each answer checked. With no API key set, calls go to the built-in
-- simulator and the report says "simulated".
--
--   llmrun examples/distributed_experiment.lua
--       all on this machine: starts a private redis-server on a free port
--       and 3 workers (llmrun worker ...), coordinates them, stops them
--   llmrun examples/distributed_experiment.lua --workers redis://host:6379/0
--       the coordinator only; on each worker host, with this file:
--   llmrun worker redis://host:6379/0 examples/distributed_experiment.lua
local N = tonumber(os.getenv("CASES") or "600")

-- ---- the experiment (every process, coordinator and workers, runs this) ----

local cases = {}
for i = 1, N do
  local a, b = 17 * i % 97 + 3, 29 * i % 89 + 5
  cases[i] = { id = "q" .. i, question = ("What is %d + %d?"):format(a, b), answer = tostring(a + b) }
end
local small, strong = llm.model "gpt-4o-mini", llm.model "gpt-4o"
local function ask(model, case)
  return model:chat { system = "Answer with the number only.", user = case.question, max_tokens = 8,
                      temperature = 0 }
end

local function experiment(workers_url)
  return llm.experiment {
    title = "small vs strong model, arithmetic", cases = cases, concurrency = 16,
    workers = workers_url, claim_after = 5,
    variants = {
      { name = "strong", run = function(c) return ask(strong, c) end },
      { name = "small", run = function(c) return ask(small, c) end },
    },
    check = llm.check.numeric(),
  }
end

-- ---- on one machine: a private Redis and three workers ----------------------

local workers = require "llm.experiment_workers"
local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

local function given_url()
  for i = 1, #arg do if arg[i] == "--workers" then return arg[i + 1] end end
  return os.getenv("LLMRUN_WORKERS")
end

local local_run = not workers.is_worker() and not given_url()
local redis_pid, dir, url, worker_pids = nil, nil, nil, {}

if local_run then
  if sh("command -v redis-server"):match("%S") == nil then
    print("This example needs redis-server (Debian: apt install redis-server; scripts/setup installs it); "
      .. "skipped.")
    return
  end
  dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  -- a free port: try a few, keep the first that answers
  for _ = 1, 20 do
    local port = math.random(20000, 60000)
    local pid = sh(("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no --dir %s "
      .. "--logfile %s/redis.log --daemonize yes --pidfile %s/redis.pid >/dev/null 2>&1; sleep 0.2; cat %s/redis.pid 2>/dev/null")
      :format(port, dir, dir, dir, dir)):match("%d+")
    if pid and sh(("redis-cli -p %d ping 2>/dev/null"):format(port)):match("PONG") then
      redis_pid, url = pid, ("redis://127.0.0.1:%d/0"):format(port)
      break
    end
  end
  assert(url, "could not start redis-server (see " .. dir .. "/redis.log)")
  llm.on_exit(function()
    for _, pid in ipairs(worker_pids) do os.execute("kill " .. pid .. " 2>/dev/null") end
    os.execute("kill " .. redis_pid .. " 2>/dev/null; rm -rf " .. dir)
  end)
  local self = sh("readlink /proc/$PPID/exe"):gsub("%s+$", "")
  for w = 1, 3 do
    worker_pids[w] = sh(("%s worker --name worker-%d %s %s >%s/worker-%d.log 2>&1 & echo $!")
      :format(self, w, url, arg[0], dir, w)):match("%d+")
  end
  print(("A private redis-server at %s and 3 workers (logs in %s)."):format(url, dir))
end

local cmp = experiment(url)

-- ---- the report (the same in every process) ----------------------------------

if workers.is_worker() then return end
print()
cmp:print()
local w = cmp.workers
if w then
  print(("Workers: %d; runs reclaimed from a stopped worker: %d; results that came twice: %d"):format(
    #w.list, w.reclaimed, w.twice))
  for _, x in ipairs(w.list) do
    print(("  %-12s %5d runs (a variant on a case)%s"):format(x.name, x.cases,
      x.rate and ("  %.0f/s"):format(x.rate) or ""))
  end
end
if local_run then
  -- the workers end once they have built the same report
  for _, pid in ipairs(worker_pids) do
    for _ = 1, 100 do
      if not os.execute("kill -0 " .. pid .. " 2>/dev/null") then break end
      llm.sleep(0.05)
    end
  end
end
