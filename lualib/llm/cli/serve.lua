-- llmrun serve --sim: the simulator as a stand-alone OpenAI-compatible
-- server. Prints its base URL on stdout and serves until Ctrl-C (exit 130;
-- the server thread stops and closes its connections on the way out).
local llm = require "llm"
local usage = [[
usage: llmrun serve --sim [options]
       llmrun serve --proxy [options]   (the gateway: llmrun serve --proxy --help)

Runs the built-in OpenAI-compatible simulator until Ctrl-C. The first line
on stdout is its base URL (e.g. http://127.0.0.1:8080/v1): point an OpenAI
client's base_url at it, with any API key.

options:
  --host ADDR          listen address (default 127.0.0.1; loopback only
                       unless --allow-remote)
  --port N             port (default 0: any free port)
  --allow-remote       permit a non-loopback --host
  --profile NAME       latency profile for every request (zero: no delay)
  --ttft-ms N          time to first token for every request
  --tokens-per-s N     generation speed for every request (0: instant)
  --jitter X           log-normal sigma of the delays (0: exact)
  --fault-rate SPEC    inject faults: NAME=RATE[,NAME=RATE...], e.g.
                       429=0.05,drop_mid_stream=0.01 (may be repeated)
  --retry-after S      retry-after header of injected 429/503 faults
  --retry-after-ms N   also send retry-after-ms
  --strict             unknown model names get 404 model_not_found
  --seed N             seed of the jitter and fault draws
  --rpm N, --tpm N     simulate rate limits per minute (x-ratelimit-* headers)
  --rate-count usage   the limits count prompt + the completion made (default max_tokens:
                       prompt + max_tokens, OpenAI's documented estimate)
  --batch-turnaround-s S  how long a batch takes (Batch API; default 2, 0 with
                       --profile zero)
  --batch-fail-rate X  share of batch lines answered with an error (0..1)
  --task FILE          register a labelled task (may be repeated): JSON Lines,
                       one case a line {"input": ..., "answer": ...}, and
                       optionally one line {"task": {"name": ..., "options":
                       [...], "instructions": [...], "difficulty": ...}}; see
                       README "The simulator's model", labelled tasks
  -q, --quiet          no summary on stderr at exit
  -h, --help           this help

Environment: LLMRUN_SIM_PROFILE, LLMRUN_SIM_TTFT_MS, LLMRUN_SIM_TOKENS_PER_S,
LLMRUN_SIM_JITTER, LLMRUN_SIM_FAULTS, LLMRUN_SIM_SEED, LLMRUN_SIM_STRICT,
LLMRUN_SIM_RPM, LLMRUN_SIM_TPM, LLMRUN_SIM_BATCH_TURNAROUND_S (options win). Per-request knobs (x-sim-*
headers, a "sim" object in the body): see README.md, "The simulator".
]]

local function fail(msg)
  io.stderr:write("llmrun serve: ", msg, "\nTry 'llmrun serve --help'.\n")
  return 2
end

local function main(args)
  for _, a in ipairs(args) do
    if a == "--proxy" then
      -- the gateway has its own options (lualib/llm/cli/serve_proxy.lua)
      local P = require "llm.cli.serve_proxy"
      local ok, o = pcall(P.parse, args)
      if not ok then
        if type(o) == "table" and o.done then return 0 end
        if type(o) == "table" and o.usage then return fail(o.usage) end
        error(o, 0)
      end
      return P.run(o, fail)
    end
  end
  local sim = require "llm.sim"
  local opts, cfg, task_files = {}, {}, {}
  local want_sim, quiet = false, false
  local i = 1
  local function value(name)
    i = i + 1
    local v = args[i]
    if v == nil then error({ usage = "option " .. name .. " needs a value" }) end
    return v
  end
  local function number(name)
    local v = value(name)
    local n = tonumber(v)
    if not n or n < 0 then error({ usage = ("option %s needs a number >= 0, got '%s'"):format(name, v) }) end
    return n
  end
  local ok, err = pcall(function()
    while i <= #args do
      local a = args[i]
      if a == "-h" or a == "--help" then
        io.stdout:write(usage)
        error({ done = true })
      elseif a == "--sim" then want_sim = true
      elseif a == "--host" then opts.host = value(a)
      elseif a == "--port" then
        local p = number(a)
        if p > 65535 or p ~= math.floor(p) then error({ usage = "--port must be from 0 to 65535" }) end
        opts.port = math.tointeger(p)
      elseif a == "--allow-remote" then opts.allow_remote = true
      elseif a == "--profile" then cfg.profile = value(a)
      elseif a == "--ttft-ms" then cfg.ttft_ms = number(a)
      elseif a == "--tokens-per-s" then cfg.tokens_per_s = number(a)
      elseif a == "--jitter" then cfg.jitter = number(a)
      elseif a == "--fault-rate" then
        local ok2, f = pcall(sim.parse_fault_rates, value(a), "--fault-rate")
        if not ok2 then error({ usage = f }) end
        cfg.faults = cfg.faults or {}
        for k, v in pairs(f) do cfg.faults[k] = v end
      elseif a == "--retry-after" then cfg.retry_after = value(a)
      elseif a == "--retry-after-ms" then cfg.retry_after_ms = math.floor(number(a))
      elseif a == "--strict" then cfg.strict = true
      elseif a == "--seed" then cfg.seed = math.tointeger(math.floor(number(a)))
      elseif a == "--rpm" or a == "--tpm" then
        cfg.rate_limit = cfg.rate_limit or {}
        cfg.rate_limit[a:sub(3)] = math.floor(number(a))
      elseif a == "--rate-count" then
        local c = value(a)
        if c ~= "usage" and c ~= "max_tokens" then error({ usage = "--rate-count must be usage or max_tokens" }) end
        cfg.rate_limit = cfg.rate_limit or {}
        cfg.rate_limit.count = c
      elseif a == "--batch-turnaround-s" then cfg.batch_turnaround_s = number(a)
      elseif a == "--batch-fail-rate" then
        cfg.batch_fail_rate = number(a)
        if cfg.batch_fail_rate > 1 then error({ usage = "--batch-fail-rate must be from 0 to 1" }) end
      elseif a == "--task" then task_files[#task_files + 1] = value(a)
      elseif a == "-q" or a == "--quiet" then quiet = true
      else
        error({ usage = "unknown option '" .. a .. "'" })
      end
      i = i + 1
    end
  end)
  if not ok then
    if type(err) == "table" and err.done then return 0 end
    if type(err) == "table" and err.usage then return fail(err.usage) end
    error(err, 0)
  end
  if not want_sim then
    return fail("--sim (the simulator) or --proxy (the gateway) is required")
  end
  local host = opts.host or "127.0.0.1"
  local loopback = host == "localhost" or host == "::1" or host:match("^127%.%d+%.%d+%.%d+$")
  if not loopback and not opts.allow_remote then
    return fail(("refusing to listen on %s, which is not a loopback address: the simulator "
      .. "has no authentication (--allow-remote permits it)"):format(host))
  end
  -- A profile name that matches nothing would silently serve with the
  -- default latencies: refuse it, and say which names exist.
  local profile = cfg.profile or sim.config().profile
  if profile ~= nil and profile ~= "zero" then
    local known = sim.config().profiles or {}
    if known[profile] == nil then
      local names = { known.zero == nil and "zero" or nil }
      for name in pairs(known) do names[#names + 1] = name end
      table.sort(names)
      return fail(("unknown latency profile '%s' (%s); profiles: %s"):format(profile,
        cfg.profile and "--profile" or "LLMRUN_SIM_PROFILE", table.concat(names, ", ")))
    end
  end
  if next(cfg) then sim.configure(cfg) end
  for _, path in ipairs(task_files) do
    local spec, terr = require("llm.sim_task").read_file(path)
    local ok, info = false, terr
    if spec then ok, info = pcall(sim.task, spec) end
    if not ok then
      io.stderr:write("llmrun serve: --task ", path, ": ", tostring(info), "\n")
      return 1
    end
    io.stderr:write(("llmrun: task %s: %d cases (%s)\n"):format(info.name, info.cases, info.kind))
  end
  local url, why = sim.start(opts)
  if not url then
    io.stderr:write("llmrun serve: ", why.message, "\n")
    return 1
  end
  io.stdout:write(url, "\n")
  io.stdout:flush()
  io.stderr:write("llmrun: simulator listening on ", url, " (Ctrl-C to stop)\n")
  if not quiet then
    require("_llm.host").on_exit(function()
      local st = sim.stats()
      if st then
        io.stderr:write(("llmrun: served %d requests (%d faults injected, peak %d connections)\n")
          :format(st.requests, st.faults_total, st.connections_peak))
      end
    end)
  end
  -- Serve until Ctrl-C: the scheduler turns SIGINT into an interrupted run
  -- (exit 130), and closing the Lua state stops the server thread.
  while true do llm.sleep(3600) end
end

-- No usage field: main answers --help itself, so that `serve --proxy
-- --help` gets the gateway's options (lualib/llm/cli.lua).
return {
  summary = "run the simulator (--sim) or the gateway (--proxy) until Ctrl-C",
  main = main,
}
