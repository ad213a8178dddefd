-- OpenAI's Batch API, as llm.batch speaks it (also to the simulator and
-- any OpenAI-compatible server that implements it). Sources, OpenAI's API
-- reference (Files, Batch) and Batch guide:
--   * the input is a JSONL file uploaded with POST /v1/files
--     (multipart/form-data, purpose "batch", a .jsonl name); each line
--     {custom_id, method: "POST", url: "/v1/chat/completions", body};
--     one model per file; up to 50,000 requests and 200 MB per file;
--   * POST /v1/batches {input_file_id, endpoint, completion_window: "24h",
--     metadata (up to 16 string pairs)} -> a Batch object;
--   * GET /v1/batches/{id}: status validating | failed | in_progress |
--     finalizing | completed | expired | cancelling | cancelled,
--     request_counts {total, completed, failed}, output_file_id,
--     error_file_id, errors {data: [{code, message, param, line}]};
--   * GET /v1/files/{id}/content: output and error lines {id, custom_id,
--     response {status_code, request_id, body} | null, error {code,
--     message} | null}, in any order; error codes batch_expired,
--     batch_cancelled, request_timeout; the simulator's answered lines
--     also carry response.headers {"x-sim-skill"} (r.sim_skill);
--   * POST /v1/batches/{id}/cancel: cancelling for up to 10 minutes, then
--     cancelled with the partial results in the output file.
-- The request line's body is exactly what m:chat would send
-- (format.chat_request); an answer is read by format.parse_chat.
local cjson = require "cjson"
local errors = require "llm.errors"
local wire = require "llm.batch_wire"

local null = cjson.null
local A = { name = "openai" }

A.MAX_REQUESTS = 50000
A.MAX_BYTES = 200 * 1000 * 1000 -- "200 MB"; taken as decimal megabytes, the smaller reading
A.ENDPOINT = "/v1/chat/completions"

local function nonnull(v) if v == null then return nil end return v end

--- The JSONL line of one request (text, without its line end).
function A.item(model, body, custom_id)
  local r = model.format.chat_request(model.cfg, model.name, body, false)
  return '{"custom_id":' .. cjson.encode(custom_id) .. ',"method":"POST","url":"' .. A.ENDPOINT
    .. '","body":' .. r.body .. "}"
end

--- Bytes an item adds to a batch (the line and its line end).
function A.item_bytes(text) return #text + 1 end

local function url(model, path) return model.cfg.base_url .. path end

-- A boundary that the file's bytes do not contain.
local function boundary(data)
  for _ = 1, 8 do
    local b = ("llmrun-%08x%08x"):format(math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
    if not data:find(b, 1, true) then return b end
  end
  error("could not find a multipart boundary absent from the data")
end

--- Uploads the JSONL text: the File object's id, or nil, err.
function A.upload(ctx, data, filename)
  local b = boundary(data)
  local body = table.concat {
    "--", b, "\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n",
    "--", b, "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"", filename,
    "\"\r\nContent-Type: application/jsonl\r\n\r\n", data, "\r\n--", b, "--\r\n",
  }
  local doc, err = wire.json(ctx, "POST", url(ctx.model, "/files"), body,
    "multipart/form-data; boundary=" .. b)
  if not doc then return nil, err end
  local id = nonnull(doc.id)
  if type(id) ~= "string" then return nil, errors.new("parse", "the file upload returned no id") end
  return id
end

-- A Batch object -> the state llm.batch works with.
local terminal = { completed = true, failed = true, expired = true, cancelled = true }

-- Odd values (a count that is a string, counts that are not an object)
-- read as 0 rather than raising: a provider's quirk must not fail a batch.
local function count(t, k)
  local v = type(t) == "table" and nonnull(t[k]) or nil
  return type(v) == "number" and math.tointeger(v) or 0
end

local function str(v) return type(v) == "string" and v or nil end

function A.state(doc)
  local counts = nonnull(doc.request_counts)
  local st = {
    id = str(doc.id), status = str(doc.status) or "?",
    total = count(counts, "total"), completed = count(counts, "completed"), failed = count(counts, "failed"),
    output_file = str(doc.output_file_id), error_file = str(doc.error_file_id),
    input_file = str(doc.input_file_id), created_at = nonnull(doc.created_at),
    model = str(doc.model), metadata = nonnull(doc.metadata),
  }
  st.terminal = terminal[st.status] == true
  st.done = st.completed + st.failed
  if st.status == "failed" then
    local e = nonnull(doc.errors)
    local first = type(e) == "table" and type(nonnull(e.data)) == "table" and e.data[1] or nil
    local msg = type(first) == "table" and nonnull(first.message) or "the batch failed"
    local line = type(first) == "table" and math.tointeger(nonnull(first.line) or nil) or nil
    st.error = errors.new("batch", "the batch failed validation: " .. tostring(msg)
      .. (line and (" (input line " .. line .. ")") or ""),
      { code = type(first) == "table" and nonnull(first.code) or "batch_failed", batch_id = st.id })
  end
  return st
end

--- Creates the batch for an uploaded file: the state, or nil, err.
function A.create(ctx, file_id, hash)
  local meta = { llmrun_hash = hash }
  for k, v in pairs(ctx.opts.metadata or {}) do meta[k] = v end
  local doc, err = wire.json(ctx, "POST", url(ctx.model, "/batches"), cjson.encode {
    input_file_id = file_id, endpoint = A.ENDPOINT, completion_window = "24h", metadata = meta,
  }, "application/json", { max_retries = 0 })
  if not doc then return nil, err end
  local st = A.state(doc)
  if not st.id then return nil, errors.new("parse", "the batch was created without an id") end
  return st
end

--- Submits a chunk: upload, then create. The state, nil and the input
-- file's id, or nil, err.
function A.submit(ctx, chunk)
  local data = table.concat(chunk.texts, "\n") .. "\n"
  local fid, err = A.upload(ctx, data, "llmrun-" .. chunk.hash:sub(1, 16) .. ".jsonl")
  if not fid then return nil, err end
  -- a create whose answer was lost may still have made the batch: look
  -- for it (by the hash in its metadata) before trying again
  local st
  for attempt = 0, ctx.retries do
    st, err = A.create(ctx, fid, chunk.hash)
    if st then return st, nil, fid end
    if not wire.retryable(err) or attempt == ctx.retries then break end
    local found = A.find(ctx, chunk.hash)
    if found then return found, nil, fid end
    wire.backoff(ctx, attempt, err)
  end
  return nil, err
end

--- A batch of ours with this hash that a lost answer or a killed run left
-- behind (the newest 100 batches are searched): its state, or nil.
function A.find(ctx, hash)
  local doc = wire.json(ctx, "GET", url(ctx.model, "/batches?limit=100"))
  local data = doc and nonnull(doc.data)
  if type(data) ~= "table" then return nil end
  for _, b in ipairs(data) do
    local meta = nonnull(b.metadata)
    if type(b) == "table" and type(meta) == "table" and meta.llmrun_hash == hash then
      local st = A.state(b)
      -- a batch that ended without answering is not worth resuming
      if st.status ~= "failed" and st.status ~= "cancelled" and st.status ~= "cancelling" then
        return st
      end
    end
  end
  return nil
end

function A.poll(ctx, id)
  local doc, err = wire.json(ctx, "GET", url(ctx.model, "/batches/" .. id))
  if not doc then return nil, err end
  return A.state(doc)
end

function A.cancel(ctx, id)
  local doc, err = wire.json(ctx, "POST", url(ctx.model, "/batches/" .. id .. "/cancel"), "{}")
  if not doc then return nil, err end
  return A.state(doc)
end

function A.list(ctx, limit)
  local doc, err = wire.json(ctx, "GET", url(ctx.model, ("/batches?limit=%d"):format(limit or 20)))
  if not doc then return nil, err end
  local out = {}
  local data = nonnull(doc.data)
  for _, b in ipairs(type(data) == "table" and data or {}) do
    if type(b) == "table" then out[#out + 1] = A.state(b) end
  end
  return out
end

-- One output or error line -> {custom_id=, parsed=, body=, request_id=} or
-- {custom_id=, err=}; nil for a line that is not one.
local function entry(model, doc, batch_id)
  if type(doc) ~= "table" then return nil end
  local cid = nonnull(doc.custom_id)
  if type(cid) ~= "string" then return nil end
  local resp, e = nonnull(doc.response), nonnull(doc.error)
  local where = { batch_id = batch_id, custom_id = cid }
  if type(resp) == "table" then
    local status = math.tointeger(nonnull(resp.status_code) or 0) or 0
    local body = nonnull(resp.body)
    local rid = nonnull(resp.request_id)
    local text = type(body) == "table" and cjson.encode(body) or tostring(body or "")
    if status >= 200 and status < 300 then
      local en = wire.parsed_entry(model, cid, text, rid, where)
      -- the simulator's line says which skill answered, as x-sim-skill does
      local h = nonnull(resp.headers)
      if en.parsed and type(h) == "table" and type(h["x-sim-skill"]) == "string" then
        en.sim_skill = h["x-sim-skill"]
      end
      return en
    end
    local f = model.format.parse_error(status, text) or {}
    where.status, where.request_id, where.type, where.code = status, rid, f.type, f.code
    return { custom_id = cid, err = errors.new("http", f.message or ("HTTP " .. status), where) }
  end
  if type(e) == "table" then
    where.code = nonnull(e.code)
    return { custom_id = cid, err = errors.new("batch", tostring(nonnull(e.message) or where.code
      or "the request failed in the batch"), where) }
  end
  return nil
end

--- The results of a finished batch: entries (custom_id -> entry) and the
-- number of lines that could not be read, or nil, err.
function A.results(ctx, st)
  local out, bad = {}, 0
  for _, fid in ipairs { st.output_file or false, st.error_file or false } do
    if fid then
      local res, err = wire.raw(ctx, "GET", url(ctx.model, "/files/" .. fid .. "/content"))
      if not res then return nil, err end
      for line in res.body:gmatch("[^\n]+") do
        if line:find("%S") then
          local ok, doc = pcall(cjson.decode, line)
          local en = ok and entry(ctx.model, doc, st.id) or nil
          if en then out[en.custom_id] = en else bad = bad + 1 end
        end
      end
    end
  end
  return out, bad
end

return A
