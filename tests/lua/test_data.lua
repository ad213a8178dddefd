-- llm.data: JSON Lines and CSV (RFC 4180) readers, sampling.
local T = ...

local function file(content)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  return path
end

T.test("jsonl: one object per line, blank lines and CRLF, limit", function()
  local p = file('{"id":"a","n":1}\r\n\n  \n{"id":"b","list":[1,2]}\n{"id":"c"}')
  local rows = assert(llm.data.jsonl(p))
  T.eq(#rows, 3)
  T.eq(rows[1], { id = "a", n = 1 })
  T.eq(rows[2].list, { 1, 2 })
  T.eq(rows[3].id, "c", "a last line without a newline counts")
  T.eq(#assert(llm.data.jsonl(p, { limit = 2 })), 2)
  T.eq(#assert(llm.data.jsonl(p, { limit = 0 })), 0)
  os.remove(p)
end)

T.test("jsonl: a bad line gives file:line and the line number", function()
  local p = file('{"id":1}\n\n{"id":2,}\n{"id":3}\n')
  local rows, err = llm.data.jsonl(p)
  T.eq(rows, nil)
  T.ok(llm.is_error(err, "data"), "an llm.error of kind data")
  T.eq(err.line, 3, "blank lines are counted")
  T.eq(err.path, p)
  T.ok(tostring(err):find(p .. ":3: invalid JSON", 1, true), tostring(err))
  os.remove(p)
  for _, c in ipairs { { "[1,2]", "an array" }, { '"text"', "a string" }, { "42", "a number" },
                       { "null", "null" }, { "true", "a boolean" } } do
    p = file('{"ok":1}\n' .. c[1] .. "\n")
    rows, err = llm.data.jsonl(p)
    T.eq(rows, nil)
    T.ok(tostring(err):find(":2: expected a JSON object, got " .. c[2], 1, true), tostring(err))
    os.remove(p)
  end
end)

T.test("jsonl and csv: a missing file returns nil, err; misuse raises", function()
  local rows, err = llm.data.jsonl("/nonexistent/cases.jsonl")
  T.eq(rows, nil)
  T.ok(tostring(err):find("nonexistent", 1, true))
  rows, err = llm.data.csv("/nonexistent/cases.csv")
  T.eq(rows, nil)
  T.ok(llm.is_error(err, "data"))
  T.err(function() llm.data.jsonl() end, "file path expected")
  T.err(function() llm.data.csv("x.csv", 5) end, "table expected")
  T.err(function() llm.data.csv("x.csv", { limit = -1 }) end, "limit")
end)

T.test("csv: RFC 4180 quoting, embedded newlines, CRLF and a BOM", function()
  local p = file('\239\187\191id,question,answer\r\n'
    .. '1,"What is 2, plus 2?",4\r\n'
    .. '2,"She said ""hi""",""\r\n'
    .. '3,"two\nlines",x\r\n'
    .. '\r\n'
    .. '4,,"last"')
  local rows = assert(llm.data.csv(p))
  T.eq(#rows, 4)
  T.eq(rows[1], { id = "1", question = "What is 2, plus 2?", answer = "4" })
  T.eq(rows[2], { id = "2", question = 'She said "hi"', answer = "" })
  T.eq(rows[3].question, "two\nlines")
  T.eq(rows[4], { id = "4", question = "", answer = "last" })
  T.eq(#assert(llm.data.csv(p, { limit = 1 })), 1)
  os.remove(p)
  -- LF only, and a trailing newline
  p = file("a,b\nx,y\n")
  T.eq(assert(llm.data.csv(p)), { { a = "x", b = "y" } })
  os.remove(p)
end)

T.test("csv: bad rows are reported with the line they start on", function()
  local cases = {
    { 'a,b\n1,2\n3,"open\nstill open\n', 3, "a quoted field is not closed" },
    { 'a,b\n1,2\n"x\ny",2,3\n', 3, "expected 2 fields (as the header), got 3" },
    { 'a,b\n"x\ny",2\n1\n', 4, "expected 2 fields (as the header), got 1" },
    { 'a,b\n1,x"y\n', 2, "a quote in an unquoted field" },
    { 'a,b\n1,"x"y\n', 2, 'unexpected "y" after a closing quote' },
    { 'a,,c\n1,2,3\n', 1, "header field 2 is empty" },
    { 'a,b,a\n1,2,3\n', 1, 'header field "a" appears twice' },
    { '', 1, "the file is empty" },
  }
  for _, c in ipairs(cases) do
    local p = file(c[1])
    local rows, err = llm.data.csv(p)
    T.eq(rows, nil, c[3])
    T.eq(err.line, c[2], c[3])
    T.ok(tostring(err):find(("%s:%d: %s"):format(p, c[2], c[3]), 1, true), tostring(err))
    os.remove(p)
  end
end)

T.test("sample: deterministic, without replacement, in the original order", function()
  local list = {}
  for i = 1, 100 do list[i] = i end
  local a = llm.data.sample(list, 10, 7)
  local b = llm.data.sample(list, 10, 7)
  T.eq(a, b, "the same seed gives the same sample")
  T.eq(#a, 10)
  for i = 2, #a do T.ok(a[i] > a[i - 1], "increasing: original order, no repeats") end
  local c = llm.data.sample(list, 10, 8)
  local same = true
  for i = 1, 10 do if a[i] ~= c[i] then same = false end end
  T.ok(not same, "another seed gives another sample")
  T.eq(llm.data.sample({ "x", "y" }, 5), { "x", "y" }, "n >= #list: a copy")
  T.eq(llm.data.sample(list, 0, 3), {})
  -- every item can be drawn: over many seeds, all 100 appear
  local seen, count = {}, 0
  for seed = 1, 200 do
    for _, v in ipairs(llm.data.sample(list, 5, seed)) do
      if not seen[v] then seen[v] = true; count = count + 1 end
    end
  end
  T.eq(count, 100)
  T.err(function() llm.data.sample("x", 1) end, "table expected")
  T.err(function() llm.data.sample(list, 1.5) end, "integer >= 0")
  T.err(function() llm.data.sample(list, 1, "s") end, "integer seed")
end)

T.test("the shipped workloads load", function()
  local root = os.getenv("LLMRUN_SOURCE_DIR") or "."
  T.eq(#assert(llm.data.jsonl(root .. "/examples/data/context_qa.jsonl")), 120)
  T.eq(#assert(llm.data.jsonl(root .. "/examples/data/workload.jsonl")), 80)
  T.eq(#assert(llm.data.jsonl(root .. "/examples/data/arithmetic.jsonl", { limit = 5 })), 5)
end)
