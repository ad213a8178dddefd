-- llmrun cassette info|list|diff|prune: look into recordings (llm.cassette
-- documents the file).
local cli = require "llm.cli"

local usage = [[
usage: llmrun cassette info CASSETTE [--json]
       llmrun cassette list CASSETTE [-n N] [--tag TAG] [--json]
       llmrun cassette diff A B [-n N]
       llmrun cassette prune CASSETTE [--tag TAG]... [--errors] [--duplicates] [--dry-run]

info    when and from what the recording was made, what it holds (calls,
        exchanges, streams, retries, cache hits, tokens, cost), and whether
        the file is intact
list    one line per call, in the order the calls began
diff    the requests only one of A and B has (with how the nearest one in
        the other differs), and the common requests whose answers differ
prune   removes calls (and their exchanges): those of a tag (--tag, may
        be repeated), those that failed (--errors), later recordings of an
        identical request (--duplicates); then compacts the file.
        --dry-run says what would go without changing anything

A cassette is an sqlite file: `sqlite3 run.cassette .schema` shows its
tables; README.md, "Record and replay", describes them.
]]

local function fail(err)
  io.stderr:write("llmrun cassette: ", tostring(type(err) == "table" and err.message or err), "\n")
  return 1
end

local function open(path, mode)
  local cas, err = require("llm.cassette").open(path, mode)
  if not cas then return nil, err end
  return cas
end

local function num(v) return v or 0 end

-- ---- info --------------------------------------------------------------------------------

local function info(args)
  local opts, rest = cli.parse(args, { ["--json"] = true })
  if #rest ~= 1 then cli.usage_error("info takes one cassette") end
  local cas, err = open(rest[1])
  if not cas then return fail(err) end
  local ok, cerr = cas:check()
  local t = assert(cas:query([[SELECT count(*) AS calls, sum(cache IS NOT NULL) AS hits,
    sum(status = 'error') AS errors, sum(kind = 'stream') AS streams, sum(kind = 'embed') AS embeds,
    sum(retries) AS retries, sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion,
    sum(cost) AS cost, min(started_at) AS first, max(started_at) AS last FROM calls]]))[1]
  local e = assert(cas:query([[SELECT count(*) AS n, sum(length(body)) AS bytes, sum(status = 0) AS failed,
    sum(error IS NOT NULL AND status <> 0) AS cut FROM exchanges]]))[1]
  local r = assert(cas:query("SELECT count(*) AS n FROM requests"))[1]
  local models = assert(cas:query([[SELECT model, provider, count(*) AS calls, sum(cost) AS cost
    FROM calls GROUP BY model, provider ORDER BY calls DESC]]))
  local size
  local f = io.open(rest[1], "rb")
  if f then size = f:seek("end") f:close() end
  local m = cas.meta
  if opts.json then
    local out = { path = rest[1], format = m.format, version = cas.version, created_at = m.created_at,
      created_by = m.created_by, source = m.source, run_id = m.run_id, providers = cas:providers_text(),
      calls = t.calls, cache_hits = num(t.hits), errors = num(t.errors), streams = num(t.streams),
      embeddings = num(t.embeds), retries = num(t.retries), prompt_tokens = num(t.prompt),
      completion_tokens = num(t.completion), cost = num(t.cost), exchanges = e.n, body_bytes = num(e.bytes),
      requests = r.n, file_bytes = size, intact = ok and true or false, models = models }
    io.stdout:write(require("llm.cache_canon").encode(out), "\n")
  else
    local lines = {
      ("%s: llmrun cassette, format version %d"):format(rest[1], cas.version),
      ("recorded   %s by %s (%s), run %s"):format(cas:recorded_date(), tostring(m.created_by),
        tostring(m.source), tostring(m.run_id)),
      ("providers  %s"):format(cas:providers_text()),
      ("calls      %d (%d streamed, %d embedding, %d answered by a cache, %d failed, %d retries)"):format(
        t.calls, num(t.streams), num(t.embeds), num(t.hits), num(t.errors), num(t.retries)),
      ("exchanges  %d HTTP attempts, %d distinct requests, %.1f KiB of bodies (%d without a response, %d cut)")
        :format(e.n, r.n, num(e.bytes) / 1024, num(e.failed), num(e.cut)),
      ("tokens     %d prompt, %d completion; cost $%.6g at the recording's prices"):format(num(t.prompt),
        num(t.completion), num(t.cost)),
      ("file       %s bytes, %s"):format(tostring(size), ok and "intact (sqlite quick_check ok)"
        or ("DAMAGED: " .. tostring(cerr and cerr.message))),
      "models",
    }
    for _, row in ipairs(models) do
      lines[#lines + 1] = ("  %-32s %-10s %6d calls  $%.6g"):format(tostring(row.model), tostring(row.provider),
        row.calls, num(row.cost))
    end
    io.stdout:write(table.concat(lines, "\n"), "\n")
  end
  cas:close()
  return ok and 0 or 1
end

-- ---- list ---------------------------------------------------------------------------------

local function first_words(canon_text)
  if not canon_text then return "" end
  local ok, c = pcall(require("_llm.json").decode, canon_text)
  if not ok or type(c) ~= "table" or type(c.body) ~= "table" then return "" end
  local b = c.body
  local text
  if type(b.messages) == "table" and #b.messages > 0 then
    local last = b.messages[#b.messages]
    text = type(last.content) == "string" and last.content or ""
  elseif type(b.input) == "table" then
    text = tostring(b.input[1] or "")
  end
  text = (text or ""):gsub("%s+", " ")
  if #text > 50 then text = "..." .. text:sub(-47) end
  return require("llm.untrusted").escape(text)
end

local function list(args)
  local opts, rest = cli.parse(args, { ["-n"] = "n", ["--tag"] = "tag", ["--json"] = true })
  if #rest ~= 1 then cli.usage_error("list takes one cassette") end
  local limit = opts.n and math.tointeger(tonumber(opts.n))
  if opts.n and (not limit or limit < 0) then cli.usage_error("-n needs a count >= 0") end
  local cas, err = open(rest[1])
  if not cas then return fail(err) end
  local rows = cas:query([[SELECT c.id, c.kind, c.model, c.tag, c.case_id, c.status, c.cache, c.latency_ms,
    c.ttft_ms, c.prompt_tokens, c.completion_tokens, c.cost, c.retries, r.canon,
    (SELECT count(*) FROM exchanges e WHERE e.call = c.id) AS attempts
    FROM calls c LEFT JOIN requests r ON r.id = c.request
    WHERE ?1 IS NULL OR c.tag = ?1 ORDER BY c.id LIMIT ?2]], opts.tag, limit or -1)
  if not rows then
    cas:close()
    return fail(err)
  end
  local canon = require "llm.cache_canon"
  if not opts.json then
    io.stdout:write(("%5s %-6s %-24s %-10s %-8s %-9s %9s %9s %7s %7s %10s  %s\n"):format("call", "kind", "model",
      "tag", "case", "status", "latency", "ttft", "prompt", "compl", "cost", "last message"))
  end
  for _, r in ipairs(rows) do
    if opts.json then
      r.first_words = first_words(r.canon)
      r.canon = nil
      io.stdout:write(canon.encode(r), "\n")
    else
      local status = r.cache and ("hit:" .. r.cache) or r.status
      if (r.attempts or 0) > 1 then status = status .. "+" .. (r.attempts - 1) end
      io.stdout:write(("%5d %-6s %-24s %-10s %-8s %-9s %9s %9s %7s %7s %10s  %s\n"):format(r.id, r.kind,
        tostring(r.model):sub(1, 24), tostring(r.tag or "-"):sub(1, 10), tostring(r.case_id or "-"):sub(1, 8),
        status:sub(1, 9), r.latency_ms and ("%.1f ms"):format(r.latency_ms) or "-",
        r.ttft_ms and ("%.1f ms"):format(r.ttft_ms) or "-", tostring(r.prompt_tokens or "-"),
        tostring(r.completion_tokens or "-"), r.cost and ("$%.6g"):format(r.cost) or "-", first_words(r.canon)))
    end
  end
  cas:close()
end

-- ---- diff ------------------------------------------------------------------------------------

local function answers_by_canon(cas)
  local rows = assert(cas:query([[SELECT r.canon, c.kind, c.answer, c.model, c.id FROM calls c
    JOIN requests r ON r.id = c.request WHERE c.cache IS NULL ORDER BY c.id]]))
  local by, order = {}, {}
  for _, r in ipairs(rows) do
    local k = r.kind .. "\n" .. r.canon
    if not by[k] then
      by[k] = r
      order[#order + 1] = k
    end
  end
  return by, order
end

local function diff(args)
  local opts, rest = cli.parse(args, { ["-n"] = "n" })
  if #rest ~= 2 then cli.usage_error("diff takes two cassettes") end
  local shown = opts.n and math.tointeger(tonumber(opts.n)) or 5
  local a, aerr = open(rest[1])
  if not a then return fail(aerr) end
  local b, berr = open(rest[2])
  if not b then return fail(berr) end
  local json = require "_llm.json"
  local cdiff = require "llm.cassette_diff"
  local ba, oa = answers_by_canon(a)
  local bb, ob = answers_by_canon(b)
  local only_a, only_b, differ, same = {}, {}, {}, 0
  for _, k in ipairs(oa) do
    if not bb[k] then only_a[#only_a + 1] = k
    elseif ba[k].answer ~= bb[k].answer then differ[#differ + 1] = k
    else same = same + 1 end
  end
  for _, k in ipairs(ob) do if not ba[k] then only_b[#only_b + 1] = k end end
  local out = {}
  out[#out + 1] = ("A %s: %d distinct requests; B %s: %d"):format(rest[1], #oa, rest[2], #ob)
  out[#out + 1] = ("%d in both with the same answer, %d in both with different answers, %d only in A, %d only in B")
    :format(same, #differ, #only_a, #only_b)
  local function nearest_lines(k, other_by, other_order, la, lb)
    local kind, text = k:match("^(%a+)\n(.*)$")
    local ok, now = pcall(json.decode, text)
    if not ok then return {} end
    local best, bd
    for i, ok2 in ipairs(other_order) do
      if i > 2000 then break end
      local ko, to = ok2:match("^(%a+)\n(.*)$")
      if ko == kind then
        local okd, rec = pcall(json.decode, to)
        if okd then
          local d = cdiff.diff(rec, now, "", { n = 0 }, 4, { lb, la })
          if not bd or d.n < bd.n then best, bd = other_by[ok2], d end
        end
      end
    end
    local lines = {}
    if best then
      lines[1] = ("    nearest in %s: call %d (%s), %d difference%s:"):format(lb, best.id, tostring(best.model), bd.n,
        bd.n == 1 and "" or "s")
      for _, l in ipairs(bd) do lines[#lines + 1] = "      " .. l end
    end
    return lines
  end
  local function section(title, keys, by, other_by, other_order, la, lb)
    if #keys == 0 then return end
    out[#out + 1] = title
    for i = 1, math.min(shown, #keys) do
      local r = by[keys[i]]
      out[#out + 1] = ("  call %d: %s %s"):format(r.id, r.kind, tostring(r.model))
      for _, l in ipairs(nearest_lines(keys[i], other_by, other_order, la, lb)) do out[#out + 1] = l end
    end
    if #keys > shown then out[#out + 1] = ("  ... and %d more"):format(#keys - shown) end
  end
  section("only in A:", only_a, ba, bb, ob, "A", "B")
  section("only in B:", only_b, bb, ba, oa, "B", "A")
  if #differ > 0 then
    out[#out + 1] = "same request, different answers:"
    for i = 1, math.min(shown, #differ) do
      local k = differ[i]
      local d = cdiff.diff(ba[k].answer, bb[k].answer, "answer", { n = 0 }, 1, { "A", "B" })
      out[#out + 1] = ("  A call %d / B call %d (%s): %s"):format(ba[k].id, bb[k].id, tostring(ba[k].model),
        require("llm.untrusted").escape(d[1] or ""))
    end
    if #differ > shown then out[#out + 1] = ("  ... and %d more"):format(#differ - shown) end
  end
  io.stdout:write(table.concat(out, "\n"), "\n")
  a:close()
  b:close()
  return (#only_a + #only_b + #differ) > 0 and 1 or 0
end

-- ---- prune --------------------------------------------------------------------------------------

local function prune(args)
  local spec = { ["--errors"] = true, ["--duplicates"] = true, ["--dry-run"] = true }
  -- --tag may be repeated: collect them before the generic parser
  local tags, rest_args = {}, {}
  local i = 1
  while i <= #args do
    if args[i] == "--tag" then
      if not args[i + 1] then cli.usage_error("option --tag needs an argument") end
      tags[#tags + 1] = args[i + 1]
      i = i + 2
    else
      rest_args[#rest_args + 1] = args[i]
      i = i + 1
    end
  end
  local opts, rest = cli.parse(rest_args, spec)
  if #rest ~= 1 then cli.usage_error("prune takes one cassette") end
  if #tags == 0 and not opts.errors and not opts.duplicates then
    cli.usage_error("say what to prune: --tag TAG, --errors or --duplicates")
  end
  local path = rest[1]
  local cas, err = open(path, opts.dry_run and "r" or "rw")
  if not cas then return fail(err) end
  local ids = {}
  local function pick(sql, ...)
    for _, r in ipairs(assert(cas:query(sql, ...))) do ids[r.id] = true end
  end
  for _, t in ipairs(tags) do pick("SELECT id FROM calls WHERE tag = ?", t) end
  if opts.errors then pick("SELECT id FROM calls WHERE status IN ('error', 'cancelled')") end
  if opts.duplicates then
    pick([[SELECT id FROM calls c WHERE c.request IS NOT NULL AND c.cache IS NULL AND EXISTS (
      SELECT 1 FROM calls d WHERE d.request = c.request AND d.kind = c.kind AND d.cache IS NULL AND d.id < c.id)]])
  end
  local list = {}
  for id in pairs(ids) do list[#list + 1] = id end
  table.sort(list)
  local size_before
  local f = io.open(path, "rb")
  if f then size_before = f:seek("end") f:close() end
  if opts.dry_run then
    io.stdout:write(("would remove %d of the calls in %s (and their exchanges)\n"):format(#list, path))
    cas:close()
    return 0
  end
  assert(cas:exec("BEGIN"))
  for _, id in ipairs(list) do
    assert(cas:exec("DELETE FROM exchanges WHERE call = ?", id))
    assert(cas:exec("DELETE FROM calls WHERE id = ?", id))
  end
  assert(cas:exec([[DELETE FROM requests WHERE id NOT IN (SELECT request FROM calls WHERE request IS NOT NULL)
    AND id NOT IN (SELECT sent_request FROM calls WHERE sent_request IS NOT NULL)]]))
  assert(cas:exec("COMMIT"))
  assert(cas:exec("VACUUM"))
  cas.db:exec("PRAGMA wal_checkpoint(TRUNCATE)")
  cas:close()
  local size_after
  f = io.open(path, "rb")
  if f then size_after = f:seek("end") f:close() end
  io.stdout:write(("removed %d calls from %s (%s -> %s bytes)\n"):format(#list, path, tostring(size_before),
    tostring(size_after)))
  return 0
end

local commands = { info = info, list = list, diff = diff, prune = prune }

local function main(args)
  local sub = args[1]
  if not sub then cli.usage_error("a subcommand is needed: info, list, diff or prune") end
  local fn = commands[sub]
  if not fn then cli.usage_error("unknown subcommand '%s' (info, list, diff or prune)", sub) end
  return fn(table.move(args, 2, #args, 1, {}))
end

return {
  summary = "look into recordings: info, list, diff, prune",
  usage = usage,
  main = main,
}
