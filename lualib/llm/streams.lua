-- What every stream object shares (llm.model's m:stream, llm.route's
-- routers' streams): how the rest of a stream becomes its final result,
-- and how a stream is handed to the caller. A stream here has :next() (a
-- delta; nil at the end; raising its llm.error when it fails), and sets
-- .response at its end and .failed (the error) when it fails.
local M = {}

local function drain(s)
  while s:next() do end
end

--- result(s) -> the final response | nil, err: consumes the rest of s.
-- A raise that is not the stream's own failure (misuse) goes on up.
function M.result(s)
  if not s.failed then
    local ok, err = pcall(drain, s)
    if not ok and not s.failed then error(err, 0) end
  end
  if s.failed then return nil, s.failed end
  return s.response
end

--- deliver(s, on_delta) -> what m:stream(req, opts) returns: with
-- on_delta, s consumed here (each delta to on_delta; an error it raises
-- goes on up) and then its result, the response or nil, err; without, the
-- generic-for triple plus s as the to-be-closed fourth value.
function M.deliver(s, on_delta)
  if not on_delta then return s, nil, nil, s end
  while true do
    local ok, d = pcall(s.next, s)
    if not ok then
      if s.failed then return nil, s.failed end
      error(d, 0)
    end
    if d == nil then return M.result(s) end
    on_delta(d)
  end
end

return M
