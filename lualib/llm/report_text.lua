-- Text forms of a report (llm.report): the terminal table with unicode
-- bar charts, Markdown, CSV (RFC 4180) and JSON (keys sorted, so the same
-- report gives the same bytes). Colour only on a terminal that wants it:
-- not when NO_COLOR is set (https://no-color.org/), TERM is dumb, or
-- stdout is not a TTY.
local host = require "_llm.host"

local M = {}

-- ---- numbers -----------------------------------------------------------------------

local function commas(n)
  local s = ("%d"):format(math.floor(n + 0.5))
  local neg, digits = s:match("^(-?)(%d+)$")
  digits = digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  return neg .. digits
end

local function fmt_value(v, unit)
  if v == nil then return "–" end
  if unit == "ms" then
    if v >= 10000 then return ("%.1f s"):format(v / 1000) end
    if v >= 1000 then return ("%.2f s"):format(v / 1000) end
    if v >= 10 then return ("%.0f ms"):format(v) end
    return ("%.1f ms"):format(v)
  elseif unit == "s" then
    return v >= 100 and ("%.0f s"):format(v) or ("%.2f s"):format(v)
  elseif unit == "USD" then
    if v == 0 then return "$0" end
    if v >= 1 then return ("$%.2f"):format(v) end
    if v >= 0.01 then return ("$%.4f"):format(v) end
    return ("$%.6f"):format(v)
  elseif unit == "%" then
    return ("%.1f%%"):format(v * 100)
  elseif unit == "tokens" then
    return v >= 100 and commas(v) or ("%.1f"):format(v)
  end
  return ("%.3g"):format(v)
end
M.fmt_value = fmt_value

local function fmt_effect(row, r)
  if r.effect == nil then return "–" end
  local function one(x)
    if row.mode == "ratio" then return ("%.2f×"):format(x) end
    if row.unit == "%" then return ("%+.1f pts"):format(x * 100) end
    return ("%+.3g"):format(x)
  end
  local s = one(r.effect)
  if r.lo ~= nil and r.hi ~= nil then
    if row.mode == "ratio" then
      s = s .. (" [%.2f, %.2f]"):format(r.lo, r.hi)
    elseif row.unit == "%" then
      s = s .. (" [%+.1f, %+.1f]"):format(r.lo * 100, r.hi * 100)
    else
      s = s .. (" [%+.3g, %+.3g]"):format(r.lo, r.hi)
    end
  end
  return s
end
M.fmt_effect = fmt_effect

local function label_of(row)
  if row.per then return row.label .. " (" .. row.per .. ")" end
  return row.label
end
M.label_of = label_of

-- ---- the terminal table -------------------------------------------------------------------

local function want_color(opts)
  if opts and opts.color ~= nil then return opts.color end
  local nc = os.getenv("NO_COLOR")
  if nc ~= nil and nc ~= "" then return false end
  if os.getenv("TERM") == "dumb" then return false end
  return host.isatty("stdout")
end

-- Display width of a UTF-8 string (every code point counts one column;
-- the table uses no wide characters).
local function width(s)
  return utf8.len(s) or #s
end

local function pad(s, w)
  return s .. (" "):rep(math.max(w - width(s), 0))
end

local EIGHTHS = { "▏", "▎", "▍", "▌", "▋", "▊", "▉", "█" }

local function bar(v, max, cells)
  if not v or not max or max <= 0 or v <= 0 then return "" end
  local eighths = math.floor(v / max * cells * 8 + 0.5)
  if eighths == 0 then return EIGHTHS[1] end
  return ("█"):rep(eighths // 8) .. (eighths % 8 > 0 and EIGHTHS[eighths % 8] or "")
end
M.bar = bar

local function quality_cell(rep, v, row)
  local value = row.values[v.name]
  local ci = row.ci[v.name]
  if value ~= nil and ci and row.key == "quality" then
    return ("%s [%s, %s]"):format(fmt_value(value, row.unit), fmt_value(ci.lo, row.unit), fmt_value(ci.hi, row.unit))
  end
  return fmt_value(value, row.unit)
end

function M.header_lines(rep)
  local lines = {}
  lines[#lines + 1] = "llmrun report: " .. rep.title
  if require("llm.dryrun").enabled() then
    lines[#lines + 1] = "DRY RUN: every call went to the simulator with no delay: latencies and wall times are not "
      .. "estimates; tokens and costs are (with the simulator's answer lengths)."
  elseif rep.simulated then
    lines[#lines + 1] = (rep.simulated == "all" and "SIMULATED" or "PARTLY SIMULATED")
      .. ": calls went to the built-in simulator; its latencies and costs model real providers but were not measured on one."
  end
  local names = {}
  for _, v in ipairs(rep.variants) do names[#names + 1] = v.name end
  lines[#lines + 1] = ("%d variant%s (%s), baseline %s · %s · %d%% intervals, %d bootstrap resamples, seed %d")
    :format(#names, #names == 1 and "" or "s", table.concat(names, ", "), rep.baseline,
      rep.paired and ("paired by case (" .. tostring(rep.cases) .. " cases)") or "unpaired",
      math.floor(rep.settings.level * 100 + 0.5), rep.settings.reps, rep.settings.seed)
  -- while replaying a cassette: where the answers came from (last, so the
  -- lines above keep their places)
  local replay = package.loaded["llm.replay"]
  local banner = replay and replay.banner()
  if banner then lines[#lines + 1] = banner end
  return lines
end

function M.text(rep, opts)
  local color = want_color(opts)
  local out = {}
  for _, l in ipairs(M.header_lines(rep)) do out[#out + 1] = l end
  out[#out + 1] = ""

  -- columns: metric | each variant | effect vs baseline (one per other) | verdict
  local head = { "metric" }
  for _, v in ipairs(rep.variants) do head[#head + 1] = v.name end
  local others = {}
  for _, v in ipairs(rep.variants) do if v.name ~= rep.baseline then others[#others + 1] = v end end
  for _, v in ipairs(others) do
    head[#head + 1] = v.name .. " vs " .. rep.baseline
    head[#head + 1] = "verdict"
  end
  local rows = {}
  local calls = { rep.count_label or "calls" }
  for _, v in ipairs(rep.variants) do
    local s = v.stats
    calls[#calls + 1] = ("%d (%d failed%s)"):format(s.calls, s.errors, s.hits > 0 and (", " .. s.hits .. " hits") or "")
  end
  rows[1] = calls
  local verdict_cols = {}
  for _, row in ipairs(rep.metrics) do
    local cells = { label_of(row) }
    for _, v in ipairs(rep.variants) do cells[#cells + 1] = quality_cell(rep, v, row) end
    for _, v in ipairs(others) do
      local r = row.vs[v.name] or {}
      cells[#cells + 1] = fmt_effect(row, r)
      cells[#cells + 1] = r.verdict or ""
      verdict_cols[#cells] = true
    end
    rows[#rows + 1] = cells
  end
  local widths = {}
  for i, h in ipairs(head) do widths[i] = width(h) end
  for _, r in ipairs(rows) do
    for i, c in ipairs(r) do widths[i] = math.max(widths[i] or 0, width(c)) end
  end
  local function line(cells, is_head)
    local parts = {}
    for i = 1, #head do
      local c = cells[i] or ""
      local s = pad(c, widths[i])
      if color and not is_head and verdict_cols[i] then
        if c == "better" then s = "\27[32m" .. s .. "\27[0m"
        elseif c == "worse" then s = "\27[31m" .. s .. "\27[0m" end
      end
      parts[#parts + 1] = s
    end
    return (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  out[#out + 1] = line(head, true)
  local total = 0
  for _, w in ipairs(widths) do total = total + w + 2 end
  out[#out + 1] = ("─"):rep(total - 2)
  for _, r in ipairs(rows) do out[#out + 1] = line(r) end

  -- bar charts of the main numbers
  local namew = 0
  for _, v in ipairs(rep.variants) do namew = math.max(namew, width(v.name)) end
  for _, key in ipairs { "quality", "latency_p50", "latency_p95", "ttft_p50", "cost", "tokens" } do
    local row
    for _, r in ipairs(rep.metrics) do if r.key == key then row = r end end
    if row then
      local max = 0
      for _, v in ipairs(rep.variants) do max = math.max(max, row.values[v.name] or 0) end
      if max > 0 then
        out[#out + 1] = ""
        out[#out + 1] = label_of(row) .. (row.better == "lower" and " (lower is better)" or " (higher is better)")
        for _, v in ipairs(rep.variants) do
          local val = row.values[v.name]
          out[#out + 1] = ("  %s  %s %s"):format(pad(v.name, namew), pad(bar(val, max, 30), 30), fmt_value(val, row.unit))
        end
      end
    end
  end
  if #rep.notes > 0 then
    out[#out + 1] = ""
    for _, n in ipairs(rep.notes) do out[#out + 1] = "note: " .. n end
  end
  return table.concat(out, "\n") .. "\n"
end

function M.print(rep, opts)
  io.stdout:write(M.text(rep, opts))
end

-- ---- Markdown ----------------------------------------------------------------------------

local function md_escape(s)
  return (tostring(s):gsub("|", "\\|"))
end

function M.markdown(rep)
  local out = {}
  out[#out + 1] = "## " .. md_escape(rep.title)
  out[#out + 1] = ""
  local head = M.header_lines(rep)
  for i = 2, #head do out[#out + 1] = (i == 2 and rep.simulated) and ("**" .. head[i] .. "**") or head[i] end
  out[#out + 1] = ""
  local cols = { "metric" }
  local others = {}
  for _, v in ipairs(rep.variants) do cols[#cols + 1] = md_escape(v.name) end
  for _, v in ipairs(rep.variants) do
    if v.name ~= rep.baseline then
      others[#others + 1] = v
      cols[#cols + 1] = md_escape(v.name .. " vs " .. rep.baseline)
      cols[#cols + 1] = "verdict"
    end
  end
  out[#out + 1] = "| " .. table.concat(cols, " | ") .. " |"
  local sep = {}
  for i = 1, #cols do sep[i] = i == 1 and "---" or "---:" end
  out[#out + 1] = "| " .. table.concat(sep, " | ") .. " |"
  local calls = { rep.count_label or "calls" }
  for _, v in ipairs(rep.variants) do calls[#calls + 1] = ("%d (%d failed)"):format(v.stats.calls, v.stats.errors) end
  for _ = 1, #others * 2 do calls[#calls + 1] = "" end
  out[#out + 1] = "| " .. table.concat(calls, " | ") .. " |"
  for _, row in ipairs(rep.metrics) do
    local cells = { md_escape(label_of(row)) }
    for _, v in ipairs(rep.variants) do
      local c = fmt_value(row.values[v.name], row.unit)
      local ci = row.ci[v.name]
      if ci and row.values[v.name] ~= nil then
        c = c .. (" [%s, %s]"):format(fmt_value(ci.lo, row.unit), fmt_value(ci.hi, row.unit))
      end
      cells[#cells + 1] = md_escape(c)
    end
    for _, v in ipairs(others) do
      local r = row.vs[v.name] or {}
      cells[#cells + 1] = md_escape(fmt_effect(row, r))
      cells[#cells + 1] = r.verdict == "better" and "**better**" or md_escape(r.verdict or "")
    end
    out[#out + 1] = "| " .. table.concat(cells, " | ") .. " |"
  end
  if #rep.notes > 0 then
    out[#out + 1] = ""
    for _, n in ipairs(rep.notes) do out[#out + 1] = "- " .. md_escape(n) end
  end
  return table.concat(out, "\n") .. "\n"
end

-- ---- data, JSON, CSV ------------------------------------------------------------------------

-- Tables with this metatable encode as JSON arrays even when empty.
local ARRAY = { __name = "json array" }
function M.array(t) return setmetatable(t or {}, ARRAY) end

--- The report as plain data (what :json() encodes).
function M.data(rep)
  local variants = M.array {}
  for i, v in ipairs(rep.variants) do variants[i] = v.stats end
  local rows = M.array {}
  for i, row in ipairs(rep.metrics) do
    rows[i] = { key = row.key, label = row.label, unit = row.unit, mode = row.mode, better = row.better,
                per = row.per, values = row.values, ci = row.ci, vs = row.vs }
  end
  return {
    title = rep.title, simulated = rep.simulated, baseline = rep.baseline,
    count_label = rep.count_label,
    paired = rep.paired or false, cases = rep.cases, settings = rep.settings,
    variants = variants, metrics = rows, notes = M.array { table.unpack(rep.notes) },
    -- while replaying a cassette: where the answers came from (llm.replay)
    replayed = package.loaded["llm.replay"] and package.loaded["llm.replay"].stamp() or nil,
  }
end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    local map = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
    return map[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function is_array(t)
  local n = #t
  if n == 0 then return getmetatable(t) == ARRAY and next(t) == nil and "empty" or false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

-- A small JSON writer: sorted keys, NaN and infinities as null, lists
-- (including empty ones where the caller marks them) as arrays.
local function encode(v, out)
  local t = type(v)
  if v == nil then out[#out + 1] = "null"
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then out[#out + 1] = "null"
    elseif math.type(v) == "integer" then out[#out + 1] = tostring(v)
    else
      -- the shortest of 15 or 17 digits that reads back the same number
      local s = ("%.15g"):format(v)
      if tonumber(s) ~= v then s = ("%.17g"):format(v) end
      out[#out + 1] = s
    end
  elseif t == "string" then out[#out + 1] = json_string(v)
  elseif t == "table" then
    local arr = is_array(v)
    if arr == "empty" then
      out[#out + 1] = "[]"
    elseif next(v) == nil then
      out[#out + 1] = "{}"
    elseif arr then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = tostring(k) end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = json_string(k)
        out[#out + 1] = ":"
        local val = v[k]
        if val == nil then val = v[tonumber(k)] end
        encode(val, out)
      end
      out[#out + 1] = "}"
    end
  else
    out[#out + 1] = json_string(tostring(v))
  end
end

function M.encode_json(v)
  local out = {}
  encode(v, out)
  return table.concat(out)
end

function M.json(rep)
  return M.encode_json(M.data(rep)) .. "\n"
end

local function csv_field(v)
  if v == nil then return "" end
  if type(v) == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "" end
    return math.type(v) == "integer" and tostring(v) or ("%.10g"):format(v)
  end
  local s = tostring(v)
  if s:find('[,"\r\n]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

M.CSV_COLUMNS = { "metric", "label", "unit", "variant", "value", "ci_lo", "ci_hi",
                  "baseline", "effect", "effect_lo", "effect_hi", "mode", "verdict" }

--- One row per (metric, variant), CRLF line ends (RFC 4180).
function M.csv(rep)
  local lines = { table.concat(M.CSV_COLUMNS, ",") }
  for _, row in ipairs(rep.metrics) do
    for _, v in ipairs(rep.variants) do
      local ci = row.ci[v.name] or {}
      local r = row.vs[v.name] or {}
      local cells = { row.key, label_of(row), row.unit, v.name, row.values[v.name], ci.lo, ci.hi,
                      rep.baseline, r.effect, r.lo, r.hi, row.mode, r.verdict }
      for i = 1, #M.CSV_COLUMNS do cells[i] = csv_field(cells[i]) end
      lines[#lines + 1] = table.concat(cells, ",")
    end
  end
  return table.concat(lines, "\r\n") .. "\r\n"
end

return M
