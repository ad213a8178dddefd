-- llm.tokens and `llmrun tokens`: golden counts (RELIABILITY.md A.31-35),
-- the model table, the cookbook's chat and tools examples, truncation,
-- weird text, misuse, and the command line.
local T = ...
local tokens = llm.tokens

T.test("golden ids and counts", function()
  T.eq(tokens.encode("tiktoken is great!", "cl100k_base"), { 83, 1609, 5963, 374, 2294, 0 })
  T.eq(tokens.encode("2 + 2 = 4", "gpt-4"), { 17, 489, 220, 17, 284, 220, 19 })
  T.eq(tokens.encode("2 + 2 = 4", "gpt-4o"), { 17, 659, 220, 17, 314, 220, 19 })
  T.eq(tokens.encode("お誕生日おめでとう", "o200k_base"),
    { 8930, 9697, 243, 128225, 8930, 17693, 4344, 48669 })
  T.eq(tokens.count("お誕生日おめでとう", "cl100k_base"), 9)
  T.eq(tokens.count("お誕生日おめでとう", "gpt-4o-mini"), 8)
  T.eq(tokens.decode({ 83, 1609, 5963, 374, 2294, 0 }, "gpt-4"), "tiktoken is great!")
  T.eq(tokens.count(""), 0)
  T.eq(tokens.encode("", "cl100k_base"), {})
end)

T.test("a second result says whether the count is an estimate", function()
  local n, estimate = tokens.count("hello world", "gpt-4o")
  T.eq(n, 2)
  T.eq(estimate, false)
  n, estimate = tokens.count("hello world") -- default: o200k_base
  T.eq({ n, estimate }, { 2, false })
end)

T.test("model to encoding (tiktoken's table)", function()
  for _, m in ipairs { "gpt-4o", "gpt-4o-2024-08-06", "ft:gpt-4o:org:custom:abc123", "gpt-4.1-mini",
    "o3", "o1-preview", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5.1", "chatgpt-4o-latest",
    "gpt-oss-20b", "openai/gpt-4o-mini", "sim/gpt-4o" } do
    T.eq({ tokens.encoding_for(m) }, { "o200k_base", false }, m)
  end
  for _, m in ipairs { "gpt-4", "gpt-4-0613", "gpt-4-turbo", "gpt-35-turbo", "gpt-3.5-turbo-0125",
    "text-embedding-3-small", "ft:gpt-3.5-turbo:acme::x", "azure/gpt-35-turbo-16k" } do
    T.eq({ tokens.encoding_for(m) }, { "cl100k_base", false }, m)
  end
  T.eq(tokens.encoding_for("text-davinci-003"), "p50k_base")
  T.eq(tokens.encoding_for("davinci"), "r50k_base")
  T.eq(tokens.encoding_for("code-davinci-edit-001"), "p50k_edit")
end)

T.test("an unknown model: o200k_base, an estimate, one warning", function()
  local status, out, err = T.llmrun([[-e "
    print(llm.tokens.count('hello world', 'my-local-llama'))
    print(llm.tokens.count('hello world', 'my-local-llama'))
    print(llm.tokens.encoding_for('my-local-llama'))"]])
  T.eq(status, 0)
  T.eq(out, "2\ttrue\n2\ttrue\no200k_base\ttrue\n")
  local _, warnings = err:gsub("no known tokenizer for model 'my%-local%-llama'", "")
  T.eq(warnings, 1, err)
end)

T.test("special-token text is ordinary text unless allowed", function()
  local n = tokens.count("<|endoftext|>", "gpt-4")
  T.ok(n > 1)
  T.eq(tokens.encode("<|endoftext|>", "gpt-4", { special = true }), { 100257 })
  T.eq(tokens.encode("<|endoftext|>", "gpt-4o", { special = true }), { 199999 })
  T.eq(tokens.decode({ 100257 }, "cl100k_base"), "<|endoftext|>")
end)

T.test("weird text never raises and round-trips", function()
  for _, s in ipairs { "a\0b", "\xff\xfe\xc3", "\xed\xa0\x80 surrogate", ("\0"):rep(1000),
    (" "):rep(100000), ("x"):rep(50000), "<|endoftext|><|fim_prefix|>" } do
    for _, enc in ipairs { "cl100k_base", "o200k_base", "r50k_base" } do
      local ids = tokens.encode(s, enc)
      T.eq(#ids, tokens.count(s, enc))
      T.ok(tokens.decode(ids, enc) == s, "round trip")
    end
  end
end)

-- encode's table is filled straight from C (src/lmod_intarray.c); the ids
-- as text (ids_text) come from the same C array without a table.
T.test("encode's table: exactly the ids, for 0, 1 and many", function()
  local tok = require "_llm.tok"
  local scripts = assert(T.read_file("tests/tokens/corpus/scripts.txt"))
  local emoji = assert(T.read_file("tests/tokens/corpus/emoji.txt")):sub(1, 20000)
  local texts = { "", "a", "hello world", "ʹʺʻʼʽ˂˃˄˅ˆ", scripts, emoji .. scripts,
    "<|endoftext|>x" .. scripts:sub(1, 3000) .. "<|endoftext|>" }
  for _, enc in ipairs { "o200k_base", "cl100k_base" } do
    for i, s in ipairs(texts) do
      for _, special in ipairs { false, true } do
        local ids = tokens.encode(s, enc, { special = special })
        local what = ("%s text %d special %s"):format(enc, i, special)
        T.eq(#ids, tokens.count(s, enc, { special = special }), what)
        T.eq(rawlen(ids), #ids, what)
        local keys = 0
        for _ in pairs(ids) do keys = keys + 1 end
        T.eq(keys, #ids, what)
        T.ok(math.type(ids[1] or 0) == "integer", what)
        T.ok(table.concat(ids, " ") == tok.ids_text(s, enc, special, " "), what)
        ids[#ids + 1] = 5 -- an ordinary table: it grows
        T.eq(#ids, tokens.count(s, enc, { special = special }) + 1, what)
      end
    end
  end
  T.eq(#tokens.encode("a", "o200k_base"), 1)
  T.eq(#tokens.encode("hello world", "o200k_base"), 2)
end)

T.test("misuse raises", function()
  T.err(function() tokens.count(nil) end, "string expected")
  T.err(function() tokens.count({}) end, "string expected")
  T.err(function() tokens.count("x", 42) end, "bad model or encoding")
  T.err(function() tokens.decode("x") end, "table of ids expected")
  T.err(function() tokens.decode({ 1, -1 }, "gpt-4") end, "bad token id at position 2")
  T.err(function() tokens.decode({ 100261 }, "gpt-4") end, "invalid token id 100261")
  T.err(function() tokens.decode({ 1.5 }, "gpt-4") end, "bad token id")
  T.err(function() tokens.truncate("x", -1) end, "token count >= 0")
  T.err(function() tokens.truncate("x", 1, nil, { side = "left" }) end, "\"middle\" expected")
  T.err(function() tokens.chat("hi") end, "messages table expected")
  T.err(function() tokens.encoding_for(nil) end, "model name expected")
  T.err(function() require("_llm.tok").count("x", "cl999k") end, "unknown encoding")
end)

-- The OpenAI cookbook's examples (How_to_count_tokens_with_tiktoken.ipynb).
local example_messages = {
  { role = "system", content = "You are a helpful, pattern-following assistant that translates corporate jargon into plain English." },
  { role = "system", name = "example_user", content = "New synergies will help drive top-line growth." },
  { role = "system", name = "example_assistant", content = "Things working well together will increase revenue." },
  { role = "system", name = "example_user", content = "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage." },
  { role = "system", name = "example_assistant", content = "Let's talk later when we're less busy about how to do better." },
  { role = "user", content = "This late pivot means we don't have time to boil the ocean for the client deliverable." },
}

T.test("chat: the cookbook's 129 / 124 / 127 and an empty list", function()
  T.eq(tokens.chat(example_messages, "gpt-4-0613"), 129)
  T.eq(tokens.chat(example_messages, "gpt-3.5-turbo-0125"), 129)
  T.eq(tokens.chat(example_messages, "gpt-4o"), 124)
  T.eq(tokens.chat(example_messages, "gpt-4o-mini"), 124)
  T.eq(tokens.chat(example_messages, "gpt-3.5-turbo-0301"), 127) -- 4 per message, -1 per name
  T.eq({ tokens.chat({}, "gpt-4o") }, { 3, false })
end)

T.test("chat with tools: the cookbook's 105 / 101", function()
  local tools = { {
    type = "function",
    ["function"] = {
      name = "get_current_weather",
      description = "Get the current weather in a given location",
      parameters = {
        type = "object",
        properties = {
          location = { type = "string", description = "The city and state, e.g. San Francisco, CA" },
          unit = { type = "string", description = "The unit of temperature to return",
                   enum = { "celsius", "fahrenheit" } },
        },
        required = { "location" },
      },
    },
  } }
  local messages = {
    { role = "system", content = "You are a helpful assistant that can answer to questions about the weather." },
    { role = "user", content = "What's the weather like in San Francisco?" },
  }
  T.eq(tokens.chat(messages, "gpt-4", { tools = tools }), 105)
  T.eq(tokens.chat(messages, "gpt-3.5-turbo", { tools = tools }), 105)
  T.eq(tokens.chat(messages, "gpt-4o", { tools = tools }), 101)
  T.eq(tokens.request { model = "gpt-4o-mini", messages = messages, tools = tools }, 101)
end)

T.test("chat: content parts and the request helper", function()
  local parts = { { role = "user", content = { { type = "text", text = "hello" },
    { type = "image_url", image_url = { url = "data:..." } }, { type = "text", text = " world" } } } }
  -- 3 + role "user" (1) + "hello" (1) + " world" (1) + 3
  T.eq(tokens.chat(parts, "gpt-4o"), 9)
  T.eq(tokens.request { model = "gpt-4o", system = "Be brief.", prompt = "Name three primes." },
    tokens.chat({ { role = "system", content = "Be brief." },
                  { role = "user", content = "Name three primes." } }, "gpt-4o"))
end)

T.test("truncate: tail, head, middle", function()
  local text = ("The quick brown fox jumps over the lazy dog. "):rep(20) .. "漢字かな交じり文 👍🏽"
  local total = tokens.count(text, "gpt-4o")
  T.eq({ tokens.truncate(text, total, "gpt-4o") }, { text, total })
  for _, n in ipairs { 0, 1, 7, 50, total - 1 } do
    for _, side in ipairs { "tail", "head", "middle" } do
      local out, got = tokens.truncate(text, n, "gpt-4o", { side = side })
      T.ok(got <= n, side .. " " .. n .. ": " .. got)
      T.eq(got, tokens.count(out, "gpt-4o"))
      T.ok(utf8.len(out), "valid UTF-8")
      if side == "tail" then T.eq(text:sub(1, #out), out) end
      if side == "head" then T.eq(text:sub(#text - #out + 1), out) end
    end
  end
  local out = tokens.truncate(text, 40, "gpt-4o", { side = "middle", marker = " [...] " })
  T.ok(out:find(" [...] ", 1, true) and out:sub(1, 10) == text:sub(1, 10)
    and out:sub(-4) == text:sub(-4), out)
  T.eq(tokens.truncate("one two three four", 2, "gpt-4o"), "one two")
  T.eq(tokens.truncate("one two three four", 2, "gpt-4o", { side = "head" }), " three four")
end)

T.test("llmrun tokens", function()
  local status, out = T.llmrun("tokens -e cl100k_base", { stdin = "tiktoken is great!" })
  T.eq({ status, out }, { 0, "6\n" })
  status, out = T.llmrun("tokens -e cl100k_base --ids -", { stdin = "tiktoken is great!" })
  T.eq({ status, out }, { 0, "83 1609 5963 374 2294 0\n" })
  status, out = T.llmrun("tokens -m gpt-4o", { stdin = "2 + 2 = 4" })
  T.eq({ status, out }, { 0, "7\n" })
  status, out = T.llmrun("tokens --special -m gpt-4 --ids", { stdin = "<|endoftext|>" })
  T.eq({ status, out }, { 0, "100257\n" })
  local path = os.tmpname()
  local f = assert(io.open(path, "wb")); f:write("hello world"); f:close()
  status, out = T.llmrun("tokens " .. path)
  os.remove(path)
  T.eq({ status, out }, { 0, "2\n" })
  status, out = T.llmrun("tokens --help")
  T.eq(status, 0)
  T.ok(out:find("usage: llmrun tokens", 1, true))
  local err
  status, out, err = T.llmrun("tokens -e nope")
  T.eq({ status, out }, { 2, "" })
  T.ok(err:find("unknown encoding 'nope'", 1, true), err)
  status, _, err = T.llmrun("tokens -m gpt-4 -e cl100k_base")
  T.eq(status, 2)
  status, _, err = T.llmrun("tokens --bogus")
  T.eq(status, 2)
  T.ok(err:find("unrecognized option '--bogus'", 1, true), err)
  status = T.llmrun("tokens -m")
  T.eq(status, 2)
  status, _, err = T.llmrun("tokens /nonexistent/file")
  T.eq(status, 1)
  T.ok(err:find("nonexistent", 1, true), err)
end)
