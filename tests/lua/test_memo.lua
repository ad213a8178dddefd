-- llm.memo: the bounded map behind the hot-path memos (a cache hit's
-- decoded document, a request's key, an answer's JSON): it starts again
-- empty rather than grow past its count or its bytes.
local T = ...
local memo = require "llm.memo"

T.test("keeps entries up to its count, then starts again", function()
  local m = memo.new(3, 1000)
  for i = 1, 3 do m:put("k" .. i, i, 1) end
  T.eq(m:get("k1"), 1)
  T.eq(m:get("k3"), 3)
  m:put("k2", 20, 1) -- a replacement is not a new entry
  T.eq(m:get("k1"), 1)
  T.eq(m:get("k2"), 20)
  m:put("k4", 4, 1) -- a fourth: everything else goes
  T.eq(m:get("k4"), 4)
  T.eq(m:get("k1"), nil)
  T.eq(m.n, 1)
end)

T.test("keeps at most its bytes, counting a replacement's new size", function()
  local m = memo.new(100, 10)
  m:put("a", "x", 4)
  m:put("b", "y", 4)
  T.eq(m.bytes, 8)
  m:put("a", "z", 6) -- 8 - 4 + 6 = 10: still within
  T.eq(m:get("b"), "y")
  T.eq(m.bytes, 10)
  m:put("c", "w", 1) -- 11 > 10: starts again
  T.eq(m:get("a"), nil)
  T.eq(m:get("c"), "w")
  T.eq(m.bytes, 1)
  m:put("big", "v", 50) -- larger than the bound alone: kept, and alone
  T.eq(m:get("big"), "v")
  T.eq(m:get("c"), nil)
end)
