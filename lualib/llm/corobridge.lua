-- Lets llmrun's waits (llm.sleep, model calls...) work inside the user's
-- own coroutines, as OpenResty does for its cosockets.
--
-- A waiting primitive yields a private token. If that yield lands in a
-- user's coroutine.resume instead of the scheduler, the wrappers below pass
-- it up (yielding the token from the resumer's own coroutine), and when
-- the scheduler resumes the task they resume the inner coroutine, whose
-- continuation then collects the result. User yields pass through as usual.
local M = {}

function M.install(loop)
  local TOKEN = loop.yield_token
  local create, resume, yield = coroutine.create, coroutine.resume, coroutine.yield
  local status, isyieldable, close = coroutine.status, coroutine.isyieldable, coroutine.close
  local abandon = loop.abandon

  local function bridge(co, ok, first, ...)
    if ok and first == TOKEN and status(co) == "suspended" then
      if not isyieldable() then
        abandon()
        return false, "cannot wait inside this coroutine: it was resumed from "
          .. "code that cannot be suspended (require, a metamethod, a C "
          .. "callback); resume it from the script body or a task instead"
      end
      yield(TOKEN)
      return bridge(co, resume(co))
    end
    return ok, first, ...
  end

  coroutine.resume = function(co, ...)
    return bridge(co, resume(co, ...))
  end

  local function unwrap(co, ok, ...)
    if ok then return ... end
    local err = ...
    if status(co) == "dead" then close(co) end
    error(err, 0)
  end

  coroutine.wrap = function(f)
    local co = create(f)
    return function(...)
      return unwrap(co, bridge(co, resume(co, ...)))
    end
  end
end

return M
