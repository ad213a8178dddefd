-- The OpenAI chat completion body is read in C (_llm.json.openai_chat,
-- src/lmod_json.c) straight into the result table; the Lua parser
-- (llm.providers.openai.parse_chat_lua) is the reference. Here both read
-- every recorded OpenAI-format response in tests/fixtures/providers, a
-- list of odd shapes, and random mutations of the recordings, and must
-- give the same result: the same keys, the same values, integers where
-- the reference has integers (math.type), the same error when there is one.
local T = ...
local json = require "_llm.json"
local openai = require "llm.providers.openai"

local DIR = assert(os.getenv("LLMRUN_SOURCE_DIR"), "LLMRUN_SOURCE_DIR is not set (run through ctest)")
  .. "/tests/fixtures/providers"

-- Stricter than T.eq: 18 and 18.0 differ, and so do a table and nil.
local function same(a, b, path)
  if type(a) ~= type(b) then return false, path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) then return false, path .. ": " .. math.type(a) .. " vs " .. math.type(b) end
    if a ~= b and not (a ~= a and b ~= b) then return false, path .. ": " .. a .. " vs " .. b end
    return true
  end
  if type(a) ~= "table" then
    if a ~= b then return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    return true
  end
  if getmetatable(a) ~= getmetatable(b) then return false, path .. ": metatables differ" end
  for k, v in pairs(a) do
    local ok, why = same(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, why end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "." .. tostring(k) .. ": missing in the first" end
  end
  return true
end

-- Both readers on one body: same result, or both nil with the same error.
-- (The reference raises on some valid JSON of an unexpected shape, a number
-- where the message belongs: llm.model makes that a parse error. The C
-- reader must leave those to it, so both raise the same.)
local function check(body, what)
  local ok1, r1, e1 = pcall(openai.parse_chat, body)
  local ok2, r2, e2 = pcall(openai.parse_chat_lua, body)
  T.eq(ok1, ok2, what .. ": raised")
  if not ok1 then
    T.eq(r1, r2, what .. ": the error raised")
    return nil, { kind = "raised" }
  end
  local ok, why = same(r1, r2, "r")
  if not ok then error(("%s: C and Lua readers differ (%s)"):format(what, why), 2) end
  T.eq(e1 and e1.kind, e2 and e2.kind, what .. ": error kind")
  -- (an error object without a message is named by its address: "table: 0x...")
  local function msg(e) return e and (tostring(e.message):gsub("table: 0x%x+", "table")) end
  T.eq(msg(e1), msg(e2), what .. ": error message")
  return r1, e1
end

local function bodies()
  local p = assert(io.popen("ls " .. DIR .. "/*.body"))
  local out = {}
  for path in p:lines() do
    local name = path:match("([^/]+)%.body$")
    local fx = dofile(DIR .. "/" .. name .. ".lua")
    if fx.kind == "chat" and fx.provider ~= "anthropic" and not name:find("stream") then
      out[#out + 1] = { name = name, body = T.read_file(path), fx = fx }
    end
  end
  p:close()
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

T.test("every recorded OpenAI-format chat response reads the same in C and in Lua", function()
  local list = bodies()
  T.ok(#list >= 15, "the recorded responses are found")
  local fast = 0
  for _, c in ipairs(list) do
    local r, err = check(c.body, c.name)
    T.ok(r or err, c.name .. ": a result or an error")
    if json.openai_chat(c.body) then fast = fast + 1 end
  end
  -- the usual shape (one choice, no error) is read in C: all but the error
  -- bodies and the n=3 one
  T.ok(fast >= #list - 4, ("the C reader takes the usual responses (%d of %d)"):format(fast, #list))
end)

T.test("the usual response is read in C, with integer counts", function()
  local body = [[{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,
    "message":{"role":"assistant","content":"hi","refusal":null,"annotations":[]},"logprobs":null,
    "finish_reason":"stop"}],"usage":{"prompt_tokens":18,"completion_tokens":2,"total_tokens":20,
    "prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},
    "service_tier":"default","system_fingerprint":"fp"}]]
  local r = T.ok(json.openai_chat(body), "read in C")
  T.eq(r.text, "hi")
  T.eq(math.type(r.usage.prompt_tokens), "integer")
  T.eq(r.usage.total_tokens, 20)
  T.eq(r.usage.cache_creation_tokens, nil)
  T.eq(r.citations, nil, "an empty annotations list is no citations")
  check(body, "usual")
end)

-- Each case: a body both readers must agree on (C or the fallback).
local ODD = {
  -- content
  [=[{"choices":[{"message":{"content":null,"tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]}}]}]=],
  [=[{"choices":[{"message":{"content":42}}]}]=],
  [=[{"choices":[{"message":{"content":4.5}}]}]=],
  [=[{"choices":[{"message":{"content":true}}]}]=],
  [=[{"choices":[{"message":{"content":[{"type":"text","text":"a"}]}}]}]=],
  [=[{"choices":[{"message":{}}]}]=],
  [=[{"choices":[{"message":null}]}]=],
  [=[{"choices":[{"message":false}]}]=],
  [=[{"choices":[{"message":[]}]}]=],
  [=[{"choices":[{"message":"text"}]}]=],
  [=[{"choices":[{"message":7}]}]=],
  [=[{"choices":[{}]}]=],
  [=[{"choices":[[]]}]=],
  [=[{"choices":[null]}]=],
  [=[{"choices":[]}]=],
  [=[{"choices":null}]=],
  [=[{"choices":{"a":1}}]=],
  [=[{"choices":[{"message":{"content":"a"}},{"message":{"content":"b"}}]}]=],
  -- errors
  [=[{"error":{"message":"bad","type":"x"}}]=],
  [=[{"error":"plain","choices":[{"message":{"content":"a"}}]}]=],
  [=[{"error":null,"choices":[{"message":{"content":"a"}}]}]=],
  [=[{"error":false,"choices":[{"message":{"content":"a"}}]}]=],
  [=[{"error":{},"choices":[{"message":{"content":"a"}}]}]=],
  -- usage
  [=[{"choices":[{"message":{"content":"a"}}],"usage":null}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":[]}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":"x"}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":3,"completion_tokens":4}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":3.0,"completion_tokens":4}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":3e0,"completion_tokens":1e400}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":"3","completion_tokens":4}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":false,"completion_tokens":null}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":-5,"total_tokens":null}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":9007199254740993,"completion_tokens":1}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":123456789012345678901234}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":-0,"completion_tokens":0.5}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens_details":{"cached_tokens":2,"cache_write_tokens":5}}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens_details":{"cache_write_tokens":null}}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens_details":{"cache_write_tokens":false}}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens_details":null,"completion_tokens_details":[]}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens_details":7}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens_details":true}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens_details":"s"}}]=],
  [=[{"choices":[{"message":{"content":"a"}}],"usage":{"completion_tokens_details":{"reasoning_tokens":12.0}}}]=],
  -- envelope and extras
  [=[{"id":null,"model":null,"system_fingerprint":null,"service_tier":null,"choices":[{"message":{"content":"a"},"finish_reason":null}]}]=],
  [=[{"id":5,"model":false,"system_fingerprint":[],"service_tier":{},"choices":[{"message":{"content":"a"},"finish_reason":3}]}]=],
  [=[{"choices":[{"message":{"content":"a","refusal":"no"}}]}]=],
  [=[{"choices":[{"message":{"content":"a","refusal":false}}]}]=],
  [=[{"choices":[{"message":{"content":"a","reasoning_content":"r1","reasoning":"r2"}}]}]=],
  [=[{"choices":[{"message":{"content":"a","reasoning_content":null,"reasoning":"r2"}}]}]=],
  [=[{"choices":[{"message":{"content":"a","reasoning_content":false,"reasoning":"r2"}}]}]=],
  [=[{"choices":[{"message":{"content":"a","reasoning_content":5,"reasoning":"r2"}}]}]=],
  [=[{"choices":[{"message":{"content":"a","reasoning":7}}]}]=],
  [=[{"choices":[{"message":{"content":"a","annotations":[{"type":"url_citation"}]}}]}]=],
  [=[{"choices":[{"message":{"content":"a","annotations":{"type":"url_citation"}}}]}]=],
  [=[{"choices":[{"message":{"content":"a","annotations":null}}]}]=],
  [=[{"choices":[{"message":{"content":"a","tool_calls":null}}]}]=],
  [=[{"choices":[{"message":{"content":"a","tool_calls":false}}]}]=],
  [=[{"choices":[{"message":{"content":"a"},"logprobs":{"content":[{"token":"a","logprob":-0.1}]}}]}]=],
  [=[{"choices":[{"message":{"content":"a"},"logprobs":{"content":null}}]}]=],
  [=[{"choices":[{"message":{"content":"a"},"logprobs":{"content":false}}]}]=],
  [=[{"choices":[{"message":{"content":"a"},"logprobs":{"content":"x"}}]}]=],
  [=[{"choices":[{"message":{"content":"a"},"logprobs":[1]}]}]=],
  [=[{"choices":[{"message":{"content":"a"},"logprobs":true}]}]=],
  -- duplicates (the last wins), text encodings, JSON that is not valid
  [=[{"choices":[{"message":{"content":"a","content":"b"}}],"choices":[{"message":{"content":"c"}}]}]=],
  '{"choices":[{"message":{"content":"bad \xff byte \xe2\x82 cut"}}]}',
  [=[{"choices":[{"message":{"content":"lone \ud800 surrogate, pair \ud83d\ude00, \u00e9\n\t\"\\\/"}}]}]=],
  [=[{"choices":[{"message":{"content":"a"}}]} trailing]=],
  [=[{"choices":[{"message":{"content":"a"}}]]=],
  [=[[1,2,3]]=],
  [=["just a string"]=],
  [=[null]=],
  "",
  "   ",
  [=[{"choices":[{"message":{"content":"a\u0000b"}}]}]=],
}

T.test("odd shapes read the same in C and in Lua", function()
  for i, body in ipairs(ODD) do check(body, "odd case " .. i) end
end)

T.test("a non-string body is no result in C and a parse error in Lua", function()
  T.eq(json.openai_chat(nil), nil)
  T.eq(json.openai_chat({}), nil)
  local r, err = openai.parse_chat(nil)
  T.eq(r, nil)
  T.eq(err.kind, "parse")
end)

-- Random edits of the recordings (a byte replaced, removed or repeated, a
-- value swapped for another kind): both readers still agree.
T.test("random mutations of the recordings read the same in C and in Lua", function()
  local list = bodies()
  local swaps = { "null", "false", "true", "0", "1.5", '"s"', "[]", "{}", "[1]", '{"a":1}', "-7", "1e3" }
  local seed = 12345
  local function rand(n) -- a fixed LCG: the same cases on every run
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n + 1
  end
  local n = 0
  for round = 1, 60 do
    for _, c in ipairs(list) do
      local b = c.body
      local kind = rand(4)
      local at = rand(#b)
      if kind == 1 then
        b = b:sub(1, at - 1) .. string.char(rand(256) - 1) .. b:sub(at + 1)
      elseif kind == 2 then
        b = b:sub(1, at - 1) .. b:sub(at + 1 + rand(4))
      elseif kind == 3 then
        b = b:sub(1, at) .. b:sub(at, at + rand(6)) .. b:sub(at + 1)
      else
        -- replace the value after a random ':' with another kind of value
        local colon = b:find(":", at, true)
        if colon then
          local stop = b:find("[,}%]]", colon + 1) or #b
          b = b:sub(1, colon) .. swaps[rand(#swaps)] .. b:sub(stop)
        end
      end
      check(b, ("mutation %d of %s"):format(round, c.name))
      n = n + 1
    end
  end
  T.ok(n > 500, "enough mutations")
end)
