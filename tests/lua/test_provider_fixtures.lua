-- Real recorded provider responses (tests/fixtures/providers; each one's
-- source is in its README) replayed through the real HTTP path: the
-- scripted server sends the recorded status, headers and body bytes, and
-- llmrun's curl transfer, SSE parser and provider parsers read them.
-- Every stream is sent three ways: whole (Content-Length), cut at awkward
-- offsets (chunks of 7, 1, 13, 2, 29 and 3 bytes, cycled) and byte by
-- byte, each piece its own write. The expected values come from the
-- fixture's sidecar (NAME.lua), written by reading the recording, never
-- from llmrun's output.
local T = ...
local mock = require "mock"
local cjson_null = require("cjson").null

local DIR = assert(os.getenv("LLMRUN_SOURCE_DIR"), "LLMRUN_SOURCE_DIR is not set (run through ctest)")
  .. "/tests/fixtures/providers"

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function fixture_names()
  local p = assert(io.popen("ls " .. DIR .. "/*.body"))
  local names = {}
  for line in p:lines() do names[#names + 1] = line:match("([^/]+)%.body$") end
  p:close()
  table.sort(names)
  return names
end

-- Bytes -> a script TEXT argument: everything but printable ASCII (and
-- the backslash) as \xHH.
local function esc(s)
  return (s:gsub("[^ -%[%]-~]", function(c) return ("\\x%02x"):format(c:byte()) end))
end

local CHUNKINGS = {
  { name = "whole", body = function(b) return "body " .. esc(b) end },
  { name = "awkward", body = function(b) return "chunked\ndrip 7,1,13,2,29,3 0 " .. esc(b) .. "\nend" end },
  { name = "bytes", body = function(b) return "chunked\ndrip 1 0 " .. esc(b) .. "\nend" end },
}

local function script_for(fx, body, chunking)
  local lines = { ("status %d"):format(fx.status) }
  local names = {}
  for k in pairs(fx.headers) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do lines[#lines + 1] = ("header %s: %s"):format(k, esc(fx.headers[k])) end
  lines[#lines + 1] = chunking.body(body)
  return table.concat(lines, "\n") .. "\n"
end

-- ---- comparing a result with the sidecar ---------------------------------------------

local function check_tool_calls(got, want, what)
  T.ok(type(got) == "table", what .. ": tool_calls missing")
  T.eq(#got, #want, what .. ": #tool_calls (a dense list)")
  local n = 0
  for _ in pairs(got) do n = n + 1 end
  T.eq(n, #want, what .. ": tool_calls has no holes")
  for i, w in ipairs(want) do
    local g = got[i]
    T.eq({ g.id, g["function"].name, g["function"].arguments }, { w.id, w.name, w.arguments },
      what .. ": tool_calls[" .. i .. "]")
  end
end

local function check_ratelimit(got, want, what)
  T.ok(type(got) == "table", what .. ": ratelimit missing")
  local now = llm.wallclock and llm.wallclock() or os.time()
  for kind, w in pairs(want) do
    local g = got[kind]
    T.ok(type(g) == "table", what .. ": ratelimit." .. kind .. " missing")
    T.eq(g.limit, w.limit, what .. ": ratelimit." .. kind .. ".limit")
    T.eq(g.remaining, w.remaining, what .. ": ratelimit." .. kind .. ".remaining")
    if w.reset then T.near(g.reset, w.reset, 1e-9, what .. ": ratelimit." .. kind .. ".reset") end
    if w.reset_epoch then
      T.near(g.reset, math.max(0, w.reset_epoch - now), 5, what .. ": ratelimit." .. kind .. ".reset")
    end
  end
end

local function check_result(r, e, what)
  for k, v in pairs(e) do
    if k == "tool_calls" then
      check_tool_calls(r.tool_calls, v, what)
    elseif k == "usage" then
      T.ok(type(r.usage) == "table", what .. ": usage missing")
      for uk, uv in pairs(v) do T.eq(r.usage[uk], uv, what .. ": usage." .. uk) end
    elseif k == "logprobs" then
      local tokens = {}
      for i, item in ipairs(r.logprobs or {}) do tokens[i] = item.token end
      T.eq(tokens, v, what .. ": logprob tokens")
    elseif k == "choices" then
      T.eq(#(r.choices or {}), v, what .. ": #choices")
    elseif k == "citations" then
      T.eq(#(r.citations or {}), v, what .. ": #citations")
    elseif k == "ratelimit" then
      check_ratelimit(r.ratelimit, v, what)
    else
      T.eq(r[k], v, what .. ": " .. k)
    end
  end
  if e.tool_calls == nil then T.eq(r.tool_calls, nil, what .. ": no tool_calls") end
end

local function check_error(err, e, what)
  T.ok(type(err) == "table", what .. ": expected an error")
  for k, v in pairs(e) do T.eq(err[k], v, what .. ": err." .. k) end
end

-- A stream's r.raw is the message the same call would have returned
-- without streaming: its text, tool calls and usage match the sidecar.
local function check_raw(provider, raw, e, what)
  T.ok(type(raw) == "table", what .. ": assembled raw message")
  if provider == "openai" then
    local msg = raw.choices[1].message
    local content = msg.content
    if content == cjson_null then content = "" end
    T.eq(content, e.text, what .. ": raw content")
    T.eq(#(msg.tool_calls or {}), #(e.tool_calls or {}), what .. ": raw tool_calls")
    if e.usage then T.eq(raw.usage.prompt_tokens, e.usage.prompt_tokens, what .. ": raw usage") end
    T.eq(raw.id, e.id, what .. ": raw id")
  else
    local text, tools = {}, {}
    for _, b in ipairs(raw.content) do
      if b.type == "text" then text[#text + 1] = b.text end
      if b.type == "tool_use" then tools[#tools + 1] = b end
    end
    T.eq(table.concat(text), e.text, what .. ": raw text blocks")
    T.eq(#tools, #(e.tool_calls or {}), what .. ": raw tool_use blocks")
    for i, b in ipairs(tools) do
      T.eq(type(b.input), "table", what .. ": raw tool_use input decoded")
      T.eq(b.id, e.tool_calls[i].id, what .. ": raw tool_use id")
    end
    if e.usage then T.eq(raw.usage.output_tokens, e.usage.completion_tokens, what .. ": raw usage") end
    T.eq(raw.id, e.id, what .. ": raw id")
  end
end

-- ---- one replay ----------------------------------------------------------------------

local function model_for(fx, srv)
  return llm.model { name = "fixture-model", provider = fx.provider, base_url = srv.url,
                     api_key = "sk-test", max_retries = 0, retry_scale = 0.01 }
end

-- One call against srv, which answers it with the next chunking's block.
local function replay(name, fx, srv, chunking)
  local what = name .. " (" .. chunking.name .. ")"
  local m = model_for(fx, srv)
  local e = fx.expect
  if fx.kind == "embed" then
    local r, err = m:embed(fx.request or (function()
      local list = {}
      for i = 1, (e.n or 1) do list[i] = "text " .. i end
      return list
    end)())
    if e.error then return check_error(err, e.error, what) end
    T.ok(r, what .. ": " .. tostring(err))
    T.eq(#r.vectors, e.n, what .. ": #vectors")
    T.eq(#r.vectors[1], e.dims, what .. ": dims")
    T.eq({ r.vectors[1][1], r.vectors[1][2], r.vectors[1][3] }, e.first, what .. ": first values")
    T.eq(r.vectors[e.n][e.dims], e.last, what .. ": last value")
    T.eq(r.model, e.model, what .. ": model")
    T.eq(r.usage, e.usage, what .. ": usage")
    if e.ratelimit then check_ratelimit(r.ratelimit, e.ratelimit, what) end
    return
  end
  local req = fx.request or "hi"
  if fx.kind == "chat" then
    local r, err = m:chat(req)
    if e.error then return check_error(err, e.error, what) end
    T.ok(r, what .. ": " .. tostring(err))
    check_result(r, e, what)
    if fx.cost then T.near(r.cost, fx.cost, 1e-12, what .. ": cost") end
    return
  end
  -- a stream: the deltas' text is the recording's text, and the final
  -- result carries what a non-streamed call would
  local texts = {}
  local r, err = m:stream(req, { on_delta = function(d) texts[#texts + 1] = d.text end })
  if e.error then
    check_error(err, e.error, what)
    T.eq(table.concat(texts), e.error.partial_text, what .. ": deltas before the error")
    return
  end
  T.ok(r, what .. ": " .. tostring(err))
  T.eq(table.concat(texts), e.text, what .. ": deltas")
  check_result(r, e, what)
  check_raw(fx.provider, r.raw, e, what)
  if fx.cost then T.near(r.cost, fx.cost, 1e-12, what .. ": cost") end
end

local names = fixture_names()

T.test("the corpus has at least 40 recordings, each with a sidecar and a source", function()
  T.ok(#names >= 40, "fixtures: " .. #names)
  local readme = read(DIR .. "/README.md")
  for _, name in ipairs(names) do
    local fx = dofile(DIR .. "/" .. name .. ".lua")
    T.ok(fx.source and fx.source.repo and fx.source.path, name .. ": source")
    T.ok(readme:find(name, 1, true), name .. " is not listed in README.md")
  end
end)

for _, name in ipairs(names) do
  T.test(name, function()
    local fx = dofile(DIR .. "/" .. name .. ".lua")
    local body = read(DIR .. "/" .. name .. ".body")
    -- one server for the three replays: request N gets block N
    local blocks = {}
    for i, chunking in ipairs(CHUNKINGS) do blocks[i] = script_for(fx, body, chunking) end
    local srv <close> = mock.start(table.concat(blocks, "---\n"))
    for _, chunking in ipairs(CHUNKINGS) do replay(name, fx, srv, chunking) end
    T.eq(#srv:requests(), #CHUNKINGS, name .. ": one request per chunking, none retried")
  end)
end
