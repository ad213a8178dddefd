-- What building the ids table costs: llm.tokens.count against
-- llm.tokens.encode (the same text, the same encoding, one thread), for
-- scripts/bench_tokens. Each file's text is taken 4 times over (long enough
-- to time well); each figure is the best of REPEATS runs, with a full
-- garbage collection before each, so one run's table is not the next run's
-- collection work. Times are the process's CPU time (os.clock), so other
-- processes on a shared machine shift them less than they shift wall time.
--   llmrun tests/bench/tokens_encode.lua REPEATS ENCODING FILE...
-- prints per file: FILE BYTES TOKENS COUNT_MB/S ENCODE_MB/S RATIO
-- where RATIO is encode's time over count's (the target: at most 1.5).
local tokens = llm.tokens
local reps, enc = tonumber(arg[1]), arg[2]
assert(reps and enc and arg[3], "usage: tokens_encode.lua REPEATS ENCODING FILE...")

local function best_of(fn)
  local best = math.huge
  for _ = 1, reps do
    collectgarbage()
    local t0 = os.clock()
    fn()
    best = math.min(best, os.clock() - t0)
  end
  return best
end

for i = 3, #arg do
  local f = assert(io.open(arg[i], "rb"))
  local text = f:read("a"):rep(4)
  f:close()
  local n = assert(tokens.count(text, enc))
  local ids = assert(tokens.encode(text, enc))
  assert(#ids == n, "encode and count disagree on " .. arg[i])
  ids = nil
  local t_count = best_of(function() tokens.count(text, enc) end)
  local t_encode = best_of(function() tokens.encode(text, enc) end)
  print(("%s %d %d %.2f %.2f %.2f"):format(arg[i], #text, n, #text / t_count / 1e6,
    #text / t_encode / 1e6, t_encode / t_count))
end
