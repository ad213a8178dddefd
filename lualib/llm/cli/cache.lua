-- llmrun cache stats|clear|path|check: look after the response cache.
local cli = require "llm.cli"
local C = require "_llm.cache"
-- JSON with sorted keys: the same numbers always print the same text
local encode = require("_llm.canon").encode

local Cmd = {}
Cmd.summary = "show, clear or locate the response cache"
Cmd.usage = [[
usage: llmrun cache stats [--json] [-n NAMESPACE] [--path FILE]
       llmrun cache clear [-n NAMESPACE] [--expired] [--force] [--path FILE]
       llmrun cache path
       llmrun cache check [--path FILE]

stats   hits (exact, semantic, shared in flight), misses, hit rate, tokens,
        cost and time saved, per namespace, over every run that used the
        cache; the false-hit table of audited semantic caches
clear   remove every entry (or a namespace's, or only expired ones); with
        --force, delete the file whatever it holds (a damaged one too)
        and start a new, empty cache
path    print the cache file's path ($XDG_CACHE_HOME/llmrun/cache.db)
check   run sqlite's integrity check on the file

  -n, --namespace NAME   one namespace only
  --expired              clear only entries past their TTL
  --force                clear: recreate the file instead of emptying it
  --path FILE            another cache file
  --json                 one JSON object on stdout
]]

local spec = {
  ["-n"] = "namespace", ["--namespace"] = "namespace", ["--path"] = "path",
  ["--json"] = true, ["--expired"] = true, ["--force"] = true,
}

-- What to say after a failure on a file that cannot be read as a cache.
local function repair_hint(status)
  if status == "corrupt" then
    return "\n(llmrun cache clear --force deletes it and starts a new, empty cache)"
  end
  return ""
end

-- An empty table encodes as {}: the list goes in by hand, last.
local function encode_with_list(obj, name, list)
  local head = encode(obj)
  return head:sub(1, -2) .. (head == "{}" and "" or ",") .. encode(name) .. ":"
    .. (#list > 0 and encode(list) or "[]") .. "}"
end

local function human_bytes(n)
  local units = { "B", "KB", "MB", "GB", "TB" }
  local i = 1
  while n >= 1000 and i < #units do
    n = n / 1000
    i = i + 1
  end
  return i == 1 and ("%d B"):format(n) or ("%.1f %s"):format(n, units[i])
end

local function human_ms(ms)
  local s = ms / 1000
  if s < 60 then return ("%.1f s"):format(s) end
  if s < 3600 then return ("%dm %02ds"):format(s // 60, math.floor(s % 60)) end
  return ("%dh %02dm"):format(s // 3600, math.floor(s % 3600 / 60))
end

-- Dollars with enough digits that a saving shows: "$0" only for nothing,
-- "$1.2345" from a cent up, else three significant digits ("$0.0000312").
local function usd(v)
  if v == nil or v ~= v then return "?" end
  if v <= 0 then return "$0" end
  if v >= 0.01 then return ("$%.4f"):format(v) end
  local decimals = math.min(12, math.ceil(-math.log(v, 10)) + 2)
  return ("$%." .. decimals .. "f"):format(v)
end

local function thousands(n)
  local s = ("%d"):format(math.floor(n + 0.5))
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

local function path_of(opts)
  if opts.path then return opts.path end
  local p, err = C.default_path()
  if not p then
    io.stderr:write("llmrun cache: ", err.message, "\n")
    return nil
  end
  return p
end

local function open(opts, readonly)
  local path = path_of(opts)
  if not path then return nil end
  local f = io.open(path, "rb")
  if not f then return nil, path end
  f:close()
  local db, err = C.open { path = path, readonly = readonly }
  if not db then
    io.stderr:write("llmrun cache: ", err.message, repair_hint(err.status), "\n")
    return false
  end
  return db, path
end

local function stats(opts)
  local db, path = open(opts, true)
  if db == false then return 1 end
  if not db then
    if not path then return 1 end
    if opts.json then
      io.stdout:write(encode_with_list({ path = path, exists = false }, "namespaces", {}), "\n")
    else
      io.stdout:write("no cache yet at ", path, "\n")
    end
    return 0
  end
  -- a file whose header is fine can still have damaged pages
  local info, err = db:info()
  local rows
  if info then rows, err = db:stats(opts.namespace) end
  if not rows then
    db:close()
    io.stderr:write("llmrun cache: ", err.message, repair_hint(err.status), "\n")
    return 1
  end
  local sem = require "llm.cache_semantic"
  local summarize = require("llm.cache").summarize
  local out = { path = path, exists = true, bytes = info.bytes, entries = info.entries,
                embeddings = info.embeddings, vectors = info.vectors, schema = info.schema }
  local namespaces = {}
  for _, r in ipairs(rows) do
    local s = summarize(r)
    s.priced_hits = nil
    s.namespace, s.entries, s.bytes, s.vectors = r.namespace, r.entries, r.bytes, r.vectors
    if info.audits > 0 then
      local t = db:audit_table(r.namespace, sem.THRESHOLDS)
      if t and t[1].samples > 0 then s.audit = t end
    end
    namespaces[#namespaces + 1] = s
  end
  db:close()
  if opts.json then
    io.stdout:write(encode_with_list(out, "namespaces", namespaces), "\n")
    return 0
  end
  local w = io.stdout
  w:write(("cache %s: %s, schema %d\n"):format(path, human_bytes(info.bytes), info.schema))
  w:write(("  %d responses · %d embeddings · %d semantic vectors\n"):format(info.entries,
    info.embeddings, info.vectors))
  if #namespaces == 0 then
    w:write("  nothing recorded yet\n")
    return 0
  end
  w:write(("\n%-16s %8s %20s %8s %8s %13s %11s %11s\n"):format("namespace", "hits",
    "exact/semantic/shared", "misses", "hit rate", "tokens saved", "cost saved", "time saved"))
  for _, s in ipairs(namespaces) do
    w:write(("%-16s %8s %20s %8s %8s %13s %11s %11s\n"):format(s.namespace, thousands(s.hits),
      ("%d/%d/%d"):format(s.exact_hits, s.semantic_hits, s.shared_hits), thousands(s.misses),
      s.hit_rate and ("%.1f%%"):format(s.hit_rate * 100) or "-", thousands(s.tokens_saved),
      usd(s.cost_saved), human_ms(s.time_saved_ms)))
  end
  for _, s in ipairs(namespaces) do
    if s.audit then
      w:write("\nsemantic audit, namespace ", s.namespace, ":\n", sem.format_audit(s.audit), "\n")
    end
  end
  return 0
end

-- clear --force: the file (and its -wal and -shm) goes, a new one comes.
local function recreate(opts)
  local path = path_of(opts)
  if not path then return 1 end
  for _, suffix in ipairs { "-wal", "-shm", "" } do
    local ok, err, code = os.remove(path .. suffix)
    if not ok and code ~= 2 then -- ENOENT is fine
      io.stderr:write("llmrun cache: cannot delete ", path .. suffix, ": ", tostring(err), "\n")
      return 1
    end
  end
  local db, err = C.open { path = path }
  if not db then
    io.stderr:write("llmrun cache: ", err.message, "\n")
    return 1
  end
  db:close()
  io.stdout:write("deleted ", path, " and started a new, empty cache\n")
  return 0
end

local function clear(opts)
  if opts.force then
    if opts.namespace or opts.expired then
      cli.usage_error("--force recreates the whole file: it takes no -n or --expired")
    end
    return recreate(opts)
  end
  local db, path = open(opts, false)
  if db == false then return 1 end
  if not db then
    if not path then return 1 end
    io.stdout:write("no cache at ", path, ": nothing to clear\n")
    return 0
  end
  local n, err = db:clear(opts.namespace, opts.expired == true)
  db:close()
  if not n then
    io.stderr:write("llmrun cache: ", err.message, repair_hint(err.status), "\n")
    return 1
  end
  io.stdout:write(("removed %d %sresponse%s%s\n"):format(n, opts.expired and "expired " or "",
    n == 1 and "" or "s", opts.namespace and (" from namespace " .. opts.namespace)
      or (opts.expired and "" or " (and every embedding, vector and statistic)")))
  return 0
end

local function check(opts)
  local db, path = open(opts, true)
  if db == false then return 1 end
  if not db then
    if path then io.stdout:write("no cache at ", path, "\n") end
    return path and 0 or 1
  end
  local result = db:integrity()
  db:close()
  io.stdout:write(path, ": ", result, "\n")
  return result == "ok" and 0 or 1
end

function Cmd.main(args)
  local sub = table.remove(args, 1)
  local opts, rest = cli.parse(args, spec)
  if #rest > 0 then cli.usage_error("unexpected argument '%s'", rest[1]) end
  if sub == "stats" then return stats(opts)
  elseif sub == "clear" then return clear(opts)
  elseif sub == "check" then return check(opts)
  elseif sub == "path" then
    local p = path_of(opts)
    if not p then return 1 end
    io.stdout:write(p, "\n")
    return 0
  elseif sub == nil then
    cli.usage_error("which one: stats, clear, path or check?")
  end
  cli.usage_error("unknown subcommand '%s' (stats, clear, path or check)", sub)
end

return Cmd
