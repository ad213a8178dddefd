-- llm.memo: a map for hot-path memos that starts again empty once it
-- would hold more than max_n entries or max_bytes of what they keep
-- alive. For work repeated on the same inputs (a cache hit's decoded
-- document, a request's cache key, an answer's JSON), where recent
-- entries are the useful ones and a bound matters more than precise
-- eviction: a gateway's long contexts must not pile up.
--   local m = memo.new(256, 8 << 20)
--   m:get(k) -> v | nil      m:put(k, v, bytes)
local M = {}

local Memo = {}
Memo.__index = Memo

function M.new(max_n, max_bytes)
  return setmetatable({ max_n = max_n, max_bytes = max_bytes, n = 0, bytes = 0, map = {}, size = {} },
                      Memo)
end

function Memo:get(k) return self.map[k] end

--- Keeps v under k; bytes: the size v keeps alive (its strings).
function Memo:put(k, v, bytes)
  local old = self.size[k]
  if (not old and self.n >= self.max_n) or self.bytes - (old or 0) + bytes > self.max_bytes then
    self.map, self.size, self.n, self.bytes, old = {}, {}, 0, 0, nil
  end
  if not old then self.n = self.n + 1 end
  self.bytes = self.bytes + bytes - (old or 0)
  self.map[k], self.size[k] = v, bytes
end

return M
