-- llm.cache_doc: what llm.cache stores for an answer, and the answer a
-- hit gives back. A stored document is the JSON of the fields below (v = 1);
-- a lookup decodes it once while its bytes stay the same (the decoded
-- memo), and every hit gets a response of its own built from it.
local cjson = require "cjson"
local loop = require "_llm.loop"
local response = require "llm.response"
local bounded = require "llm.memo"

local now = loop.now

local M = {}

function M.zero_usage()
  return { prompt_tokens = 0, completion_tokens = 0, total_tokens = 0, cached_tokens = 0,
           reasoning_tokens = 0 }
end

-- What is kept of a response: enough to answer again and to say what the
-- original call cost. Not raw provider documents, never request headers.
-- Logprobs (asked for by the request, so part of its key) are kept as
-- {token=, logprob=} pairs: a cascade's confidence check needs them on a
-- hit as much as on a call.
local function logprob_pairs(list)
  if type(list) ~= "table" then return nil end
  local out = {}
  for i, item in ipairs(list) do
    if type(item) == "table" then out[i] = { token = item.token, logprob = item.logprob } end
  end
  return out
end

-- What the provider returned beside the text that a hit gives back too
-- (README "Responses").
local KEPT = { "refusal", "reasoning", "stop_sequence", "citations", "system_fingerprint", "sim_skill" }

function M.keep_extras(to, from)
  -- rawget: a response's __index would decode its body for `raw`
  for _, k in ipairs(KEPT) do to[k] = rawget(from, k) end
  return to
end

--- encode(resp) -> true, the stored bytes | false, why
function M.encode(resp)
  return pcall(cjson.encode, M.keep_extras({
    v = 1, text = resp.text, tool_calls = resp.tool_calls, finish_reason = resp.finish_reason,
    choices = resp.choices, usage = resp.usage, model = resp.model,
    latency_ms = resp.latency_ms, ttft_ms = resp.ttft_ms, cost = resp.cost,
    logprobs = logprob_pairs(resp.logprobs),
  }, resp))
end

--- decode(value) -> the stored document | nil (not one of ours)
function M.decode(value)
  local ok, doc = pcall(cjson.decode, value)
  if not ok or type(doc) ~= "table" or doc.v ~= 1 then return nil end
  for k, v in pairs(doc) do
    if v == cjson.null then doc[k] = nil end
  end
  if type(doc.usage) == "table" then -- token counts are integers (cjson reads floats)
    for k, v in pairs(doc.usage) do doc.usage[k] = math.tointeger(v) or v end
  end
  return doc
end

-- Stored text as deltas: words with the space before them, about the
-- grain of a provider's stream. "timed" spreads them like the original:
-- the first at its TTFT, the rest evenly until its latency.
local function replay_of(doc, mode)
  local text = doc.text or ""
  local parts, pos = {}, 1
  while pos <= #text do
    local s, e = text:find("^%s*[^%s]+", pos)
    if not s then -- trailing white space joins the last word
      if #parts > 0 then parts[#parts] = parts[#parts] .. text:sub(pos)
      else parts[1] = text:sub(pos) end
      break
    end
    parts[#parts + 1] = text:sub(s, e)
    pos = e + 1
  end
  local i, t0 = 0, now()
  local timed = mode == "timed" and doc.latency_ms
  local first = timed and (doc.ttft_ms or 0) / 1000 or 0
  local step = timed and #parts > 1 and math.max(0, doc.latency_ms / 1000 - first) / (#parts - 1) or 0
  return function()
    i = i + 1
    local p = parts[i]
    if not p then return nil end
    if timed then
      local wait = t0 + first + step * (i - 1) - now()
      if wait > 0 then loop.sleep(wait) end
    end
    return { text = p, index = 0, t = now(), cached = true }
  end
end

-- A copy of a stored document's value: a hit's tables are its own (the
-- document may be shared by lookups, see `decoded`).
local function copy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = copy(x) end
  return c
end

-- from: a stored document (a plain table: indexing it is rawget)
local function copy_extras(to, from)
  for i = 1, #KEPT do
    local k = KEPT[i]
    local v = from[k]
    if v ~= nil then to[k] = copy(v) end
  end
  return to
end

-- A hit's counts are integers already (M.decode made the stored
-- ones so; M.zero_usage's are; a shared answer's went through
-- response.new): it takes response.new's metatable without its pass
-- over the counts.
local RESPONSE_MT = getmetatable(response.new({}))

--- hit(call, doc, kind, extra, replay_mode) -> the response a hit on doc
-- gives call: latency is the lookup; `saved` the original; a stream's
-- deltas come from replay_mode ("instant" | "timed").
function M.hit(call, doc, kind, extra, replay_mode)
  local latency = (now() - call.t0) * 1000
  local r = setmetatable(copy_extras({
    text = doc.text, tool_calls = copy(doc.tool_calls), finish_reason = doc.finish_reason,
    choices = copy(doc.choices), usage = M.zero_usage(), model = doc.model or call.model.name,
    logprobs = copy(doc.logprobs),
    provider = call.model.provider, simulated = call.model.simulated,
    latency_ms = latency, ttft_ms = latency, lookup_ms = latency, retries = 0, cached = kind,
    saved = { latency_ms = doc.latency_ms, ttft_ms = doc.ttft_ms, usage = copy(doc.usage),
              model = doc.model or call.model.name, cost = doc.cost },
    cached_at = extra and extra.created,
    similarity = extra and extra.similarity,
    matched_prompt = extra and extra.prompt,
    shared = extra and extra.shared or nil,
  }, doc), RESPONSE_MT)
  if call.kind == "stream" then r.replay = replay_of(doc, replay_mode) end
  return r
end

-- Documents decoded by recent lookups, by key: {value=, doc=}. A hit on
-- an entry whose stored bytes are the same as last time reuses the
-- decoded document instead of decoding it again (the same request again
-- and again, a gateway's hot path: the decode and its clean-up loops were
-- a third of a hit's lookup). The comparison is on the bytes the store
-- returned, so a changed, expired or cleared entry is never served from
-- here. The document is shared: readers never change it, and
-- M.hit gives each hit copies of its tables.
local DECODED_MAX, DECODED_BYTES_MAX = 256, 8 << 20

--- decoded(shared, key, value) -> the document of value, stored under key
-- (shared: the store's state, which holds the memo), or nil.
function M.decoded(shared, key, value)
  local memo = shared.decoded
  if not memo then
    memo = bounded.new(DECODED_MAX, DECODED_BYTES_MAX)
    shared.decoded = memo
  end
  local e = memo:get(key)
  if e and e.value == value then return e.doc end
  local doc = M.decode(value)
  if not doc then return nil end
  memo:put(key, { value = value, doc = doc }, #value)
  return doc
end

return M
