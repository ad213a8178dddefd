-- The shared-budget run of test_budget_redis.lua and test_redis_cluster.lua:
-- o.processes copies of a script, each making o.calls calls under one Redis
-- budget (o.usd, o.name, o.redis; a first token after o.ttft_ms), 4 at a
-- time, counting what it got and what was refused. Each copy must exit 0.
--   run(T, run_many, o) -> total spent, calls answered, calls refused
return function(T, run_many, o)
  local outs, errs, sts = run_many(o.processes, ([[
    local b = llm.budget { usd = %s, name = %q, redis = %q }
    local m = llm.model { "sim/gpt-4o-mini", headers = { ["x-sim-ttft-ms"] = "%d" } }
    local spent, ok, refused = 0, 0, 0
    local list = {}
    for i = 1, %d do list[i] = i end
    llm.map(list, function(i)
      local r, err = m:chat { user = "Count to five, process " .. arg[1] .. " call " .. i, max_tokens = 200 }
      if r then ok, spent = ok + 1, spent + r.cost
      elseif err.kind == "budget" then refused = refused + 1
      else error(tostring(err)) end
    end, { concurrency = 4 })
    print(("%%d %%d %%.9f"):format(ok, refused, spent))
  ]]):format(o.usd, o.name, o.redis, o.ttft_ms, o.calls))
  local total, oks, refusals = 0, 0, 0
  for i = 1, o.processes do
    T.eq(sts[i], 0, outs[i] .. errs[i])
    local ok, refused, spent = outs[i]:match("^(%d+) (%d+) (%S+)")
    oks, refusals, total = oks + tonumber(ok), refusals + tonumber(refused), total + tonumber(spent)
  end
  return total, oks, refusals
end
