-- What the Batch API adapters (llm.batch_openai, llm.batch_anthropic)
-- share: requests made with the model's connection settings (its headers,
-- key, timeouts and retries: Model:send with opts.net for the method, the
-- content type and the size cap), JSON answers, and an
-- answer line turned into the fields of a response by the provider's own
-- parser (format.parse_chat), as m:chat reads a response.
--
-- ctx: {model = an llm.model, opts = llm.batch's options, retries = how
-- often a submission is tried again}
local cjson = require "cjson"
local loop = require "_llm.loop"
local errors = require "llm.errors"
local retry = require "llm.retry"

local M = {}

-- Output files can be large: 10,000 answers are ~10 MB. A real batch of
-- 50,000 long answers stays well under this.
M.MAX_DOWNLOAD = 1e9

-- The model's header lines with the content type of this request.
local function header_lines(model, content_type)
  local out = {}
  for _, h in ipairs(model.net.headers) do
    if not h:lower():match("^content%-type:") then out[#out + 1] = h end
  end
  if content_type then out[#out + 1] = "Content-Type: " .. content_type end
  return out
end

--- One request -> the response (a 2xx) or nil, err. over: {max_retries=}.
function M.raw(ctx, method, url, body, content_type, over)
  local m = ctx.model
  local max_retries = over and over.max_retries
  if max_retries == nil then max_retries = ctx.opts.max_retries end
  return m:send("request", url, body, {
    max_retries = max_retries, -- nil: the model's
    net = { method = method, max_body = M.MAX_DOWNLOAD,
            headers = header_lines(m, body and (content_type or "application/json") or nil) },
  })
end

--- The same, its body decoded as a JSON object.
function M.json(ctx, method, url, body, content_type, over)
  local res, err = M.raw(ctx, method, url, body, content_type, over)
  if not res then return nil, err end
  local ok, doc = pcall(cjson.decode, res.body)
  if not ok or type(doc) ~= "table" then
    local s = tostring(res.body):gsub("%s+", " "):sub(1, 200)
    return nil, errors.new("parse", ("%s %s: the answer is not a JSON object: %s"):format(method,
      url, s))
  end
  return doc, nil, res
end

--- Whether trying again may help (the same rule as the transport's).
function M.retryable(err)
  if type(err) ~= "table" then return false end
  if err.quota_exhausted then return false end
  if err.kind == "transport" or err.kind == "timeout" then return true end
  return err.kind == "http" and err.status ~= nil and retry.should_retry_status(err.status, {})
end

--- Waits before attempt n + 1 (the server's delay when it gave one).
function M.backoff(ctx, n, err)
  local d = type(err) == "table" and err.retry_after or nil
  if type(d) ~= "number" or d < 0 or d > 60 then d = math.min(0.5 * 2 ^ n, 8) end
  loop.sleep(d * (ctx.model.net.retry_scale or retry.scale))
end

--- An answer's body text -> {custom_id=, parsed=, body=, request_id=} or
-- {custom_id=, err=} when the provider's parser refuses it.
function M.parsed_entry(model, cid, text, request_id, where)
  local ok, parsed, perr = pcall(model.format.parse_chat, text)
  if not ok then perr, parsed = errors.new("parse", "unexpected response shape: " .. tostring(parsed)), nil end
  if not parsed then
    local e = perr or errors.new("parse", "the answer could not be read")
    for k, v in pairs(where or {}) do if e[k] == nil then e[k] = v end end
    return { custom_id = cid, err = e }
  end
  return { custom_id = cid, parsed = parsed, body = text, request_id = request_id }
end

return M
