-- A gateway strategy, and a before/after run of it in front of an
-- unmodified client.
--
-- As a strategy, for any app (Python, JS, curl) pointed at the gateway:
--   llmrun serve --proxy --cache --script examples/proxy_strategy.lua
-- it does three things to every chat request:
--   1. a long context (a message over 600 tokens) is cut to the sentences
--      that matter for the question (llm.compress.select, BM25, 300 tokens);
--   2. a request that is then short (under 500 prompt tokens) goes to the
--      small model; the rest keep the model the client asked for;
--   3. repeats are answered from the cache (--cache; the demo opens one).
--
-- As a demo:  llmrun examples/proxy_strategy.lua [N] [REPORT.html]
-- it starts two gateways in this process, one plain ("baseline") and one
-- with this strategy and a cache ("strategy"), and sends the same N
-- requests of examples/data/workload.jsonl (questions over long documents,
-- with repeats and paraphrases) to each from a plain HTTP client that knows
-- nothing of llmrun: OpenAI's chat completions API, model gpt-4o, a tag
-- header. The before/after report then comes from the call log, as
-- `llmrun report` would print it, with the client's own accuracy count.
local SMALL = "gpt-4o-mini"
local LONG_CONTEXT, SHORT_PROMPT, KEEP = 600, 500, 300

local function text_of(content)
  if type(content) == "string" then return content end
  local parts = {}
  for _, b in ipairs(type(content) == "table" and content or {}) do
    if type(b) == "table" and b.type == "text" then parts[#parts + 1] = b.text end
  end
  return table.concat(parts, "\n")
end

local stats = { requests = 0, compressed = 0, routed_small = 0, tokens_before = 0, tokens_after = 0 }

function on_request(req, ctx)
  local msgs = req.messages
  if type(msgs) ~= "table" or #msgs == 0 then return end
  stats.requests = stats.requests + 1
  local question = text_of(msgs[#msgs].content)
  local total = 0
  for i, m in ipairs(msgs) do
    if type(m.content) == "string" then
      local n = llm.tokens.count(m.content, req.model)
      if n > LONG_CONTEXT and i < #msgs then
        local short, st = llm.compress.select(m.content, { query = question, budget = KEEP, model = req.model })
        m.content = short
        stats.compressed = stats.compressed + 1
        stats.tokens_before = stats.tokens_before + st.tokens_before
        stats.tokens_after = stats.tokens_after + st.tokens_after
        n = st.tokens_after
      end
      total = total + n
    end
  end
  if total < SHORT_PROMPT and req.model ~= SMALL then
    req.model = SMALL
    stats.routed_small = stats.routed_small + 1
  end
end

-- Observing only: the answers stream back untouched.
function on_response(resp, ctx) end

if ... == "--strategy" then return end -- loaded by the gateway: no demo

-- ---- the demo -------------------------------------------------------------------------------

local http = require "_llm.http"
local cjson = require "cjson"
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local n_cases = tonumber(arg and arg[1]) or 80
local html_path = arg and arg[2]

local cases = assert(llm.data.jsonl(here .. "/data/workload.jsonl"))
while #cases > n_cases do table.remove(cases) end

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))
local cache <close> = assert(llm.cache.open { path = dir .. "/cache.db" })

local proxy = require "llm.proxy"
local baseline <close> = assert(proxy.start {})
local optimized <close> = assert(proxy.start {
  cache = cache, strategy = { on_request = on_request, on_response = on_response } })
print(("gateways: baseline %s/v1, strategy %s/v1 (both in front of the %s)"):format(
  baseline.url, optimized.url, os.getenv("OPENAI_API_KEY") and "OpenAI API" or "simulator"))

-- The client: plain HTTP, OpenAI's wire format, nothing of llmrun.
local function ask(url, tag, case)
  local body = cjson.encode {
    model = "gpt-4o", max_tokens = 20, temperature = 0,
    messages = {
      { role = "system", content = "Answer from the context with the value only.\n\nContext:\n" .. case.context },
      { role = "user", content = case.question },
    } }
  local res, err = http.request { method = "POST", url = url .. "/v1/chat/completions", body = body,
    headers = { "Content-Type: application/json", "Authorization: Bearer sk-demo",
                "x-llmrun-tag: " .. tag, "x-llmrun-case: " .. case.id } }
  if not res or res.status ~= 200 then return false end
  local ok, doc = pcall(cjson.decode, res.body)
  local text = ok and doc.choices and doc.choices[1].message.content or ""
  return llm.check.equals(case.answer)(case, { text = text }) and true or false
end

local right = {}
for _, v in ipairs { { "baseline", baseline.url }, { "strategy", optimized.url } } do
  local tag, url = v[1], v[2]
  local t0 = llm.now()
  local ok = llm.map(cases, function(case) return ask(url, tag, case) end, { concurrency = 8, progress = false })
  local n = 0
  for _, good in ipairs(ok) do if good then n = n + 1 end end
  right[tag] = n
  print(("%-9s %d requests in %.2f s, %d answered right (client's check)"):format(tag, #cases, llm.now() - t0, n))
end
print(("strategy: %d contexts compressed (%d -> %d tokens), %d requests sent to %s"):format(
  stats.compressed, stats.tokens_before, stats.tokens_after, stats.routed_small, SMALL))
local st = optimized:stats()
print(("cache: %d exact hits of %d requests"):format(st.cache_hits.exact, st.requests))

-- The report from the call log: what the gateways logged for this run.
assert(llm.log.flush())
local report = assert(llm.report.from_log { runs = { llm.log.run_id() } })
print()
report:print()
print(("accuracy (client's check): baseline %d/%d, strategy %d/%d"):format(
  right.baseline, #cases, right.strategy, #cases))
if html_path then print("report: " .. report:html(html_path)) end
os.execute("rm -rf '" .. dir .. "'")
