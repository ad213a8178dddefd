-- llm.json_raw: the raw text of a value inside a JSON document, which is
-- how tool arguments reach the user byte for byte.
local T = ...
local J = require "llm.json_raw"
local cjson = require "cjson"

local DOC = [[ {"content" : [ {"type":"text","text":"a]}\"{ \\"},
  {"type":"tool_use","input" : {"a":[] , "n":12345678901234567890,"u":"http:\/\/x"} },
  {"input":[1, {"x": "}"}], "e": {} } ], "k": 1, "k": "last",
  "num": -1.5e+3, "t": true, "n": null } ]]

T.test("values at paths, as written", function()
  T.eq(J.at(DOC, { "content", 2, "input" }), '{"a":[] , "n":12345678901234567890,"u":"http:\\/\\/x"}')
  T.eq(J.at(DOC, { "content", 3, "input" }), '[1, {"x": "}"}]')
  T.eq(J.at(DOC, { "content", 3, "e" }), "{}")
  T.eq(J.at(DOC, { "content", 1, "text" }), '"a]}\\"{ \\\\"')
  T.eq(J.at(DOC, { "content", 3, "input", 2, "x" }), '"}"')
  T.eq(J.at(DOC, { "k" }), '"last"', "a repeated key: the last, as cjson decodes it")
  T.eq(J.at(DOC, { "num" }), "-1.5e+3")
  T.eq(J.at(DOC, { "t" }), "true")
  T.eq(J.at(DOC, { "n" }), "null")
  T.eq(J.at(DOC, {}), DOC:match("^%s*(.-)%s*$"))
end)

T.test("missing paths and wrong shapes give nil", function()
  T.eq(J.at(DOC, { "nope" }), nil)
  T.eq(J.at(DOC, { "content", 9 }), nil)
  T.eq(J.at(DOC, { "content", "x" }), nil)
  T.eq(J.at(DOC, { "k", 1 }), nil)
  T.eq(J.at("[]", { 1 }), nil)
  T.eq(J.at("{}", { "a" }), nil)
  T.eq(J.at(nil, { "a" }), nil)
end)

T.test("every value of a decoded document is found and decodes to the same", function()
  local doc = cjson.decode(DOC)
  local function walk(v, path)
    local raw = J.at(DOC, path)
    T.ok(raw, "path " .. table.concat(path, "."))
    T.eq(cjson.decode("[" .. raw .. "]")[1], v, "path " .. table.concat(path, "."))
    if type(v) == "table" then
      for k, x in pairs(v) do
        local p = { table.unpack(path) }
        p[#p + 1] = k
        walk(x, p)
      end
    end
  end
  walk(doc, {})
end)
