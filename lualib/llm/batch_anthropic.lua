-- Anthropic's Message Batches API, as llm.batch speaks it. Sources,
-- Anthropic's API reference (Create / Retrieve / List / Cancel a Message
-- Batch, Retrieve Message Batch results) and its batch processing guide:
--   * POST /v1/messages/batches {requests: [{custom_id, params}]}, params
--     being a Messages API request; up to 100,000 requests or 256 MB per
--     batch, whichever comes first; custom_id matches ^[a-zA-Z0-9_-]{1,64}$;
--   * GET /v1/messages/batches/{id}: processing_status in_progress |
--     canceling | ended, request_counts {processing, succeeded, errored,
--     canceled, expired}, results_url once it has ended;
--   * the results (GET results_url, .../results): JSONL lines {custom_id,
--     result: {type: succeeded, message} | {type: errored, error: {type:
--     "error", error: {type, message}}} | {type: canceled} | {type:
--     expired}}, in any order;
--   * POST /v1/messages/batches/{id}/cancel.
-- Each request's params are exactly what m:chat would send
-- (format.chat_request); a message is read by format.parse_chat. Canceled
-- and expired results get OpenAI's codes (batch_cancelled, batch_expired),
-- so a script handles one set of codes for both providers.
local cjson = require "cjson"
local errors = require "llm.errors"
local wire = require "llm.batch_wire"

local null = cjson.null
local A = { name = "anthropic" }

A.MAX_REQUESTS = 100000
A.MAX_BYTES = 256 * 1000 * 1000 -- "256 MB", the smaller (decimal) reading
A.PATH = "/v1/messages/batches"

local function nonnull(v) if v == null then return nil end return v end

function A.item(model, body, custom_id)
  local r = model.format.chat_request(model.cfg, model.name, body, false)
  return '{"custom_id":' .. cjson.encode(custom_id) .. ',"params":' .. r.body .. "}"
end

--- Bytes an item adds to the request body (the item and its comma).
function A.item_bytes(text) return #text + 1 end

local function base(model) return model.cfg.base_url end

-- Odd values read as 0 or nothing rather than raising.
local function state(doc)
  local c = nonnull(doc.request_counts)
  local function n(k)
    local v = type(c) == "table" and nonnull(c[k]) or nil
    return type(v) == "number" and math.tointeger(v) or 0
  end
  local function str(v) return type(v) == "string" and v or nil end
  local st = {
    id = str(doc.id), status = str(doc.processing_status) or "?",
    completed = n "succeeded", failed = n "errored" + n "canceled" + n "expired",
    processing = n "processing", results_url = str(doc.results_url),
    created_at = nonnull(doc.created_at),
  }
  st.total = st.completed + st.failed + st.processing
  st.done = st.completed + st.failed
  st.terminal = st.status == "ended"
  return st
end
A.state = state

--- Creates the batch: the state, or nil, err. A request whose answer
-- was lost (a timeout, a dropped connection) is not sent again: the batch
-- may exist, and Anthropic's batches carry nothing to find it by; a
-- refusal (429, 5xx) is retried.
function A.submit(ctx, chunk)
  local body = '{"requests":[' .. table.concat(chunk.texts, ",") .. "]}"
  local doc, err
  for attempt = 0, ctx.retries do
    doc, err = wire.json(ctx, "POST", base(ctx.model) .. A.PATH, body, "application/json",
      { max_retries = 0 })
    if doc then
      local st = state(doc)
      if st.id then return st end
      return nil, errors.new("parse", "the batch was created without an id")
    end
    if not (err.kind == "http" and wire.retryable(err)) or attempt == ctx.retries then break end
    wire.backoff(ctx, attempt, err)
  end
  if err.kind ~= "http" then
    err.message = err.message .. " (the batch may have been created: see llmrun batch list)"
  end
  return nil, err
end

function A.poll(ctx, id)
  local doc, err = wire.json(ctx, "GET", base(ctx.model) .. A.PATH .. "/" .. id)
  if not doc then return nil, err end
  return state(doc)
end

function A.cancel(ctx, id)
  local doc, err = wire.json(ctx, "POST", base(ctx.model) .. A.PATH .. "/" .. id .. "/cancel")
  if not doc then return nil, err end
  return state(doc)
end

function A.list(ctx, limit)
  local doc, err = wire.json(ctx, "GET", base(ctx.model) .. A.PATH .. ("?limit=%d"):format(limit or 20))
  if not doc then return nil, err end
  local out = {}
  local data = nonnull(doc.data)
  for _, b in ipairs(type(data) == "table" and data or {}) do
    if type(b) == "table" then out[#out + 1] = state(b) end
  end
  return out
end

-- results_url is absolute; a path (a test server's) is taken on the base URL.
local function results_url(model, st)
  local u = st.results_url
  if type(u) == "string" and u:match("^https?://") then return u end
  if type(u) == "string" and u:sub(1, 1) == "/" then
    return (base(model):match("^(https?://[^/]+)") or base(model)) .. u
  end
  return base(model) .. A.PATH .. "/" .. st.id .. "/results"
end

local function entry(model, doc, batch_id)
  if type(doc) ~= "table" then return nil end
  local cid, result = nonnull(doc.custom_id), nonnull(doc.result)
  if type(cid) ~= "string" or type(result) ~= "table" then return nil end
  local where = { batch_id = batch_id, custom_id = cid }
  local kind = nonnull(result.type)
  if kind == "succeeded" then
    local msg = nonnull(result.message)
    if type(msg) ~= "table" then return nil end
    return wire.parsed_entry(model, cid, cjson.encode(msg), nonnull(msg.id), where)
  elseif kind == "errored" then
    local outer = nonnull(result.error) or {}
    local inner = type(outer) == "table" and nonnull(outer.error) or nil
    inner = type(inner) == "table" and inner or outer
    where.code, where.type = nonnull(inner.type), nonnull(inner.type)
    return { custom_id = cid, err = errors.new("batch", tostring(nonnull(inner.message)
      or "the request failed in the batch"), where) }
  elseif kind == "canceled" then
    where.code = "batch_cancelled"
    return { custom_id = cid, err = errors.new("batch", "the batch was canceled before this request ran", where) }
  elseif kind == "expired" then
    where.code = "batch_expired"
    return { custom_id = cid, err = errors.new("batch", "the batch expired before this request ran", where) }
  end
  return nil
end

function A.results(ctx, st)
  local res, err = wire.raw(ctx, "GET", results_url(ctx.model, st))
  if not res then return nil, err end
  local out, bad = {}, 0
  for line in res.body:gmatch("[^\n]+") do
    if line:find("%S") then
      local ok, doc = pcall(cjson.decode, line)
      local en = ok and entry(ctx.model, doc, st.id) or nil
      if en then out[en.custom_id] = en else bad = bad + 1 end
    end
  end
  return out, bad
end

return A
