-- llm.sim and _llm.sim: the shared server's life cycle, configuration
-- reaching the server, stats, private servers, typed userdata, and the
-- environment. HTTP goes through bash's /dev/tcp (no curl binary needed):
-- the server runs on its own thread, so a blocking popen is fine here.
local T = ...
local sim = llm.sim
local cjson = require "cjson.safe"

-- One HTTP/1.1 request; returns status, headers (lower-case keys), body.
local function http(url, method, path, body, headers)
  local host, port = url:match("^http://([%d.]+):(%d+)")
  local lines = { ("%s %s HTTP/1.1"):format(method, path), "Host: " .. host,
                  "Connection: close" }
  for k, v in pairs(headers or {}) do lines[#lines + 1] = k .. ": " .. v end
  if body then
    lines[#lines + 1] = "Content-Type: application/json"
    lines[#lines + 1] = "Content-Length: " .. #body
  end
  local req = table.concat(lines, "\r\n") .. "\r\n\r\n" .. (body or "")
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb")); f:write(req); f:close()
  local p = assert(io.popen(("bash -c 'exec 3<>/dev/tcp/%s/%s && cat %s >&3 && cat <&3' 2>/dev/null")
    :format(host, port, tmp), "r"))
  local raw = p:read("a")
  p:close()
  os.remove(tmp)
  local head, rest = raw:match("^(.-)\r\n\r\n(.*)$")
  if not head then return nil, raw end
  local status = tonumber(head:match("^HTTP/1%.%d (%d+)"))
  local hdrs = {}
  for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do hdrs[k:lower()] = v end
  if (hdrs["transfer-encoding"] or ""):find("chunked") then
    local out, pos = {}, 1
    while true do
      local size, after = rest:match("^(%x+)\r\n()", pos)
      size = size and tonumber(size, 16)
      if not size or size == 0 then break end
      out[#out + 1] = rest:sub(after, after + size - 1)
      pos = after + size + 2
    end
    rest = table.concat(out)
  end
  return status, hdrs, rest
end

-- A chat request with no simulated delay (whatever the default profiles say).
local function chat(url, extra, headers)
  local body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]'
    .. (extra or "") .. "}"
  local h = { ["x-sim-profile"] = "zero" }
  for k, v in pairs(headers or {}) do h[k] = v end
  return http(url, "POST", "/v1/chat/completions", body, h)
end

T.test("ensure starts one shared server and returns its /v1 base URL", function()
  sim.stop()
  T.eq(sim.url(), nil)
  T.eq(sim.running(), false)
  local url = sim.ensure()
  T.ok(url:match("^http://127%.0%.0%.1:%d+/v1$"), url)
  T.eq(sim.ensure(), url)
  T.eq(sim.url(), url)
  T.err(function() sim.start() end, "already running")
  local status, h, body = http(url, "GET", "/v1/models")
  T.eq(status, 200)
  T.ok(h["x-request-id"]:match("^req_"))
  T.eq(cjson.decode(body).object, "list")
end)

T.test("configure reaches the running server", function()
  local url = sim.ensure()
  sim.configure { faults = { ["503"] = 1 }, retry_after = 7 }
  local status, h = chat(url)
  T.eq(status, 503)
  T.eq(h["retry-after"], "7")
  sim.configure { faults = { ["503"] = 0 } }   -- a zero rate removes it
  T.eq((chat(url)), 200)
  sim.configure { profiles = { slowpoke = { ttft_ms = 120 } }, strict = true }
  local st, _, body = http(url, "POST", "/v1/chat/completions",
    '{"model":"nope","messages":[{"role":"user","content":"x"}]}')
  T.eq(st, 404)
  T.eq(cjson.decode(body).error.code, "model_not_found")
  local t0 = llm.now()
  local st2, h2 = http(url, "POST", "/v1/chat/completions",
    '{"model":"slowpoke","messages":[{"role":"user","content":"x"}]}')
  T.eq(st2, 200)
  T.eq(h2["x-sim-profile"], "slowpoke")
  T.ok(llm.now() - t0 >= 0.12, "the profile's TTFT was applied")
  sim.configure { strict = false, profiles = false }
end)

T.test("a bad configuration raises and leaves the old one in place", function()
  local url = sim.ensure()
  sim.configure { faults = { ["500"] = 1 } }
  T.err(function() sim.configure { faults = { meteor = 0.5 } } end, "unknown fault 'meteor'")
  T.err(function() sim.configure { ttft_ms = -3 } end, "'ttft_ms' must be a number >= 0")
  T.err(function() sim.configure { colour = "blue" } end, "unknown key 'colour'")
  T.err(function() sim.configure { faults = { ["429"] = 2 } } end, "from 0 to 1")
  T.err(function() sim.configure "fast" end, "table expected")
  T.eq((chat(url)), 500)            -- still the last good configuration
  sim.configure { faults = false }
  T.eq((chat(url)), 200)
end)

T.test("stats count requests and faults; reset clears them", function()
  local url = sim.ensure()
  sim.reset()
  chat(url)
  chat(url, nil, { ["x-sim-fault"] = "429" })
  chat(url, nil, { ["x-sim-fault"] = "drop" })
  local st = sim.stats()
  T.eq(st.requests, 3)
  T.eq(st.chat, 3)
  T.eq(st.faults_total, 2)
  T.eq(st.faults["429"], 1)
  T.eq(st.faults.drop_before_headers, 1)
  T.eq(math.type(st.requests), "integer")
  T.ok(st.connections_peak >= 1)
  T.ok(st.nofile_limit >= 1024)
  local _, _, body = http(url, "GET", "/sim/stats")
  T.eq(cjson.decode(body).requests, 4)
  sim.reset()
  T.eq(sim.stats().requests, 0)
  T.eq(next(sim.stats().faults), nil)
end)

T.test("stop, then ensure starts a fresh server", function()
  local url = sim.ensure()
  sim.stop()
  sim.stop() -- harmless
  T.eq(sim.url(), nil)
  local ok, why = sim.stats()
  T.eq(ok, nil)
  T.ok(why:find("not running"))
  T.ok(http(url, "GET", "/v1/models") == nil, "the old port is closed")
  local url2 = sim.ensure()
  T.eq((http(url2, "GET", "/v1/models")), 200)
end)

T.test("private servers are typed userdata; closing twice is harmless", function()
  local s = sim.new({ port = 0 }, { models = { "m-1" } })
  T.ok(tostring(s):match("^sim%.server %(http://127%.0%.0%.1:%d+%)$"))
  T.ok(s:port() > 0)
  local _, _, body = http(s:url(), "GET", "/v1/models")
  T.eq(cjson.decode(body).data[1].id, "m-1")
  s:close()
  s:close()
  T.eq(tostring(s), "sim.server (closed)")
  T.err(function() s:url() end, "closed simulator server")
  do
    local s2 <close> = sim.new()
    T.ok(s2:url())
  end
  local nope, why = sim.new { host = "10.1.2.3" }
  T.eq(nope, nil)
  T.eq(why.kind, "sim")
  T.ok(why.message:find("loopback"))
  local a <close> = sim.new()
  local taken, why2 = sim.new { port = a:port() }
  T.eq(taken, nil)
  T.eq(why2.kind, "sim")
  T.ok(why2.message:find("cannot listen"))
  T.err(function() sim.new { port = 70000 } end, "'port' must be an integer from 0 to 65535")
end)

T.test("start takes listen options and configuration together", function()
  sim.stop()
  local url = sim.start { port = 0, seed = 5, models = { "alpha" } }
  local _, _, body = http(url:gsub("/v1$", ""), "GET", "/v1/models")
  local ids = {}
  for _, m in ipairs(cjson.decode(body).data) do ids[m.id] = true end
  T.ok(ids.alpha, "alpha is listed")
  sim.stop()
  sim.configure { models = false }
end)

T.test("profiles are normalised from several shapes", function()
  local p = sim.normalize_profiles {
    ["gpt-4o"] = { ttft_ms = 400, tokens_per_s = 90, jitter = 0.2, source = "a URL" },
    { name = "o3", ttft_s = 2, tps = 40 },
    note = "not a profile",
  }
  T.eq(p["gpt-4o"], { ttft_ms = 400, tokens_per_s = 90, jitter = 0.2, prefill_ms_per_1k = 0 })
  T.eq(p.o3, { ttft_ms = 2000, tokens_per_s = 40, jitter = 0, prefill_ms_per_1k = 0 })
  T.eq(p.note, nil)
  -- llm.sim_profiles' shape: seconds, under `profiles`
  local q = sim.normalize_profiles { profiles = {
    x = { ttft = 0.5, tps = 80, jitter = 0.25, prefill_per_1k = 0.04, source = "rough guess" } } }
  T.eq(q.x, { ttft_ms = 500, tokens_per_s = 80, jitter = 0.25, prefill_ms_per_1k = 40 })
end)

T.test("fault rate lists parse, and bad ones say why", function()
  T.eq(sim.parse_fault_rates("429=0.05,drop_mid_stream=0.01"),
    { ["429"] = 0.05, drop_mid_stream = 0.01 })
  T.err(function() sim.parse_fault_rates("429:0.5", "X") end, "NAME=RATE")
  T.err(function() sim.parse_fault_rates("429=1.5", "X") end, "from 0 to 1")
end)

T.test("the environment configures the server; configure{} wins over it", function()
  local bin = os.getenv("LLMRUN") or "llmrun"
  local function run(env, code)
    local p = io.popen(("%s %s -e '%s' 2>&1"):format(env, bin, code))
    local out = p:read("a")
    local _, _, status = p:close()
    return status, out
  end
  local status, out = run("LLMRUN_SIM_FAULTS=500=1,drop=0.25 LLMRUN_SIM_TTFT_MS=12 "
    .. "LLMRUN_SIM_PROFILE=zero LLMRUN_SIM_STRICT=1 LLMRUN_SIM_RPM=60",
    [[local c = llm.sim.config()
      print(c.faults["500"], c.faults.drop, c.ttft_ms, c.profile, c.strict, c.rate_limit.rpm)
      llm.sim.configure{ttft_ms = 3}
      print(llm.sim.config().ttft_ms)]])
  T.eq(status, 0, out)
  T.eq(out, "1\t0.25\t12\tzero\ttrue\t60\n3\n")
  status, out = run("LLMRUN_SIM_TTFT_MS=soon", "llm.sim.ensure()")
  T.ok(status ~= 0)
  T.ok(out:find("LLMRUN_SIM_TTFT_MS must be a number", 1, true), out)
  status, out = run("LLMRUN_SIM_FAULTS=meteor=0.5", "llm.sim.ensure()")
  T.ok(status ~= 0)
  T.ok(out:find("unknown fault 'meteor'", 1, true), out)
end)

T.test("the sim server of a script stops when the script ends", function()
  local status, out, err = T.llmrun([[-e 'print(llm.sim.ensure())']])
  T.eq(status, 0, err)
  local url = out:match("(http://%S+)")
  T.ok(url)
  T.ok(http(url:gsub("/v1$", ""), "GET", "/v1/models") == nil, "nobody listens after exit")
end)
