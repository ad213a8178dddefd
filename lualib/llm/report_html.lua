-- A report (llm.report) as one self-contained HTML file: inline CSS and
-- inline SVG charts, nothing fetched, so it opens anywhere and can be
-- mailed around. An experiment's report adds its per-case table
-- (llm.report_cases_html), whose filters and sorting are the page's only
-- script, inline. Charts: latency CDF per variant, TTFT
-- histogram, cost per variant (with its interval), tokens per variant
-- (prompt and completion), and quality when the report has it. Every
-- chart is an <svg> with a stable id (chart-latency-cdf, chart-ttft-hist,
-- chart-cost, chart-tokens, chart-quality); a chart without data says so
-- inside its frame.
local text = require "llm.report_text"

local M = {}

local PALETTE = { "#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7b83", "#57606a" }

local function esc(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;", ["'"] = "&#39;" }))
end

local function num(v)
  return ("%.2f"):format(v)
end

-- ---- chart frame -------------------------------------------------------------------

local W, H = 640, 300
local PAD = { l = 72, r = 32, t = 48, b = 44 }
local PART_COLORS = { "#54aeff", "#fb8f44" }

local function frame(id, title, body, legend, h)
  local out = {}
  h = h or H
  out[#out + 1] = ('<figure><svg id="%s" class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">')
    :format(id, W, h, W, h, esc(title))
  out[#out + 1] = ('<text x="%d" y="20" class="title">%s</text>'):format(PAD.l, esc(title))
  out[#out + 1] = body
  if legend then out[#out + 1] = legend end
  out[#out + 1] = "</svg></figure>"
  return table.concat(out, "\n")
end

local function no_data(id, title)
  return frame(id, title, ('<rect x="%d" y="%d" width="%d" height="%d" class="plot"/><text x="%d" y="%d" class="empty">no data</text>')
    :format(PAD.l, PAD.t, W - PAD.l - PAD.r, H - PAD.t - PAD.b, W // 2 - 24, H // 2))
end

local function nice_max(v)
  if v <= 0 then return 1 end
  local p = 10 ^ math.floor(math.log(v, 10))
  for _, m in ipairs { 1, 2, 2.5, 5, 10 } do
    if v <= m * p then return m * p end
  end
  return 10 * p
end

-- Axes with ticks: x from 0 to xmax, y from 0 to ymax; fx/fy format labels.
local function axes(xmax, ymax, fx, fy, xlabel, ylabel)
  local out = {}
  local pw, ph = W - PAD.l - PAD.r, H - PAD.t - PAD.b
  out[#out + 1] = ('<rect x="%d" y="%d" width="%d" height="%d" class="plot"/>'):format(PAD.l, PAD.t, pw, ph)
  for i = 0, 4 do
    local x = PAD.l + pw * i / 4
    local y = PAD.t + ph - ph * i / 4
    out[#out + 1] = ('<line x1="%s" y1="%d" x2="%s" y2="%d" class="grid"/>'):format(num(x), PAD.t, num(x), PAD.t + ph)
    out[#out + 1] = ('<text x="%s" y="%d" class="tick" text-anchor="middle">%s</text>')
      :format(num(x), PAD.t + ph + 16, esc(fx(xmax * i / 4)))
    out[#out + 1] = ('<line x1="%d" y1="%s" x2="%d" y2="%s" class="grid"/>'):format(PAD.l, num(y), PAD.l + pw, num(y))
    out[#out + 1] = ('<text x="%d" y="%s" class="tick" text-anchor="end">%s</text>')
      :format(PAD.l - 6, num(y + 4), esc(fy(ymax * i / 4)))
  end
  out[#out + 1] = ('<text x="%d" y="%d" class="axis" text-anchor="middle">%s</text>'):format(PAD.l + pw // 2, H - 8, esc(xlabel))
  out[#out + 1] = ('<text x="14" y="%d" class="axis" text-anchor="middle" transform="rotate(-90 14 %d)">%s</text>')
    :format(PAD.t + ph // 2, PAD.t + ph // 2, esc(ylabel))
  return table.concat(out, "\n")
end

-- The legend sits between the title and the plot.
local function legend(names, colors)
  local out = {}
  local x = PAD.l
  colors = colors or PALETTE
  for i, name in ipairs(names) do
    out[#out + 1] = ('<rect x="%d" y="28" width="10" height="10" fill="%s"/><text x="%d" y="37" class="legend">%s</text>')
      :format(x, colors[(i - 1) % #colors + 1], x + 14, esc(name))
    x = x + 28 + (utf8.len(name) or #name) * 7
  end
  return table.concat(out, "\n")
end

local function fmt_ms(v) return v == 0 and "0" or text.fmt_value(v, "ms") end
local function fmt_pct(v) return ("%.3g%%"):format(v * 100) end

-- ---- charts ---------------------------------------------------------------------------------

local function latency_cdf(rep)
  -- an experiment's rows are cases (count_label "cases"), end to end
  local per_case = rep.count_label == "cases"
  local id, title = "chart-latency-cdf", per_case and "Latency CDF (per case, end to end; failed cases excluded)"
    or "Latency CDF (successful model calls; cache hits excluded)"
  local ps = {}
  for i = 0, 100 do ps[#ps + 1] = i end
  local curves, xmax, names = {}, 0, {}
  for i, v in ipairs(rep.variants) do
    names[i] = v.name
    if v.collector and v.stats.latency.count > 0 then
      local q = v.collector:quantiles("latency", ps)
      curves[i] = q
      xmax = math.max(xmax, q[100] or 0) -- p99: the long tail must not squash the rest
    end
  end
  if next(curves) == nil then return no_data(id, title) end
  xmax = nice_max(xmax * 1.05)
  local pw, ph = W - PAD.l - PAD.r, H - PAD.t - PAD.b
  local body = { axes(xmax, 1, fmt_ms, fmt_pct, "latency", per_case and "fraction of cases ≤ latency"
    or "fraction of calls ≤ latency") }
  for i, q in pairs(curves) do
    local pts = {}
    for k, p in ipairs(ps) do
      local x = q[k]
      if x then
        x = math.min(x, xmax)
        pts[#pts + 1] = num(PAD.l + pw * x / xmax) .. "," .. num(PAD.t + ph - ph * p / 100)
      end
    end
    body[#body + 1] = ('<polyline class="series" data-variant="%s" fill="none" stroke="%s" stroke-width="2" points="%s"/>')
      :format(esc(rep.variants[i].name), PALETTE[(i - 1) % #PALETTE + 1], table.concat(pts, " "))
  end
  return frame(id, title, table.concat(body, "\n"), legend(names))
end

local function ttft_hist(rep)
  local per_case = rep.count_label == "cases"
  local id, title = "chart-ttft-hist", per_case and "Time to first token (histogram, share of cases per bin)"
    or "Time to first token (histogram, share of calls per bin)"
  local hi, names = 0, {}
  for i, v in ipairs(rep.variants) do
    names[i] = v.name
    local p99 = v.stats.ttft.p99
    if p99 then hi = math.max(hi, p99) end
  end
  if hi <= 0 then return no_data(id, title) end
  local NB = 20
  hi = nice_max(hi * 1.05)
  local counts, ymax = {}, 0
  for i, v in ipairs(rep.variants) do
    if v.collector and v.stats.ttft.count > 0 then
      -- shares of the kept samples (all calls, or a uniform sample of them)
      local c = v.collector:histogram("ttft", 0, hi, NB)
      local n = 0
      for b = 1, NB do n = n + c[b] end
      for b = 1, NB do
        c[b] = c[b] / n
        ymax = math.max(ymax, c[b])
      end
      counts[i] = c
    end
  end
  ymax = nice_max(ymax)
  local pw, ph = W - PAD.l - PAD.r, H - PAD.t - PAD.b
  local body = { axes(hi, ymax, fmt_ms, fmt_pct, "time to first token", per_case and "share of cases"
    or "share of calls") }
  local nv = #rep.variants
  local bw = pw / NB
  for i, c in pairs(counts) do
    for b = 1, NB do
      if c[b] > 0 then
        local h = ph * c[b] / ymax
        local x = PAD.l + bw * (b - 1) + bw * (i - 1) / nv
        body[#body + 1] = ('<rect class="bar" data-variant="%s" x="%s" y="%s" width="%s" height="%s" fill="%s"/>')
          :format(esc(rep.variants[i].name), num(x), num(PAD.t + ph - h), num(bw / nv - 1), num(h),
            PALETTE[(i - 1) % #PALETTE + 1])
      end
    end
  end
  return frame(id, title, table.concat(body, "\n"), legend(names))
end

-- Horizontal bars, one per variant, with optional interval whiskers and
-- stacked parts: items = {{name=, parts={v1, v2}, lo=, hi=, label=}}.
local function hbars(id, title, items, part_names, fmt, fixed_max)
  local max = 0
  for _, it in ipairs(items) do
    local sum = 0
    for _, p in ipairs(it.parts) do sum = sum + p end
    max = math.max(max, sum, it.hi or 0)
  end
  if max <= 0 then return no_data(id, title) end
  max = fixed_max or nice_max(max * 1.05)
  local rowh = 34
  local h = PAD.t + PAD.b + 8 + rowh * #items
  local pw = W - PAD.l - PAD.r - 90
  local body = { ('<rect x="%d" y="%d" width="%d" height="%d" class="plot"/>'):format(PAD.l, PAD.t, W - PAD.l - PAD.r, h - PAD.t - PAD.b) }
  for i = 0, 4 do
    local x = PAD.l + pw * i / 4
    body[#body + 1] = ('<line x1="%s" y1="%d" x2="%s" y2="%d" class="grid"/><text x="%s" y="%d" class="tick" text-anchor="middle">%s</text>')
      :format(num(x), PAD.t, num(x), h - PAD.b, num(x), h - PAD.b + 16, esc(fmt(max * i / 4)))
  end
  for i, it in ipairs(items) do
    local y = PAD.t + 8 + (i - 1) * rowh
    local x = PAD.l
    body[#body + 1] = ('<text x="%d" y="%s" class="tick" text-anchor="end">%s</text>'):format(PAD.l - 6, num(y + rowh * 0.4), esc(it.name))
    for k, p in ipairs(it.parts) do
      local w = pw * p / max
      local fill = #it.parts > 1 and PART_COLORS[(k - 1) % #PART_COLORS + 1] or PALETTE[(i - 1) % #PALETTE + 1]
      body[#body + 1] = ('<rect class="bar" data-variant="%s" x="%s" y="%s" width="%s" height="%s" fill="%s"/>')
        :format(esc(it.name), num(x), num(y), num(w), num(rowh * 0.6), fill)
      x = x + w
    end
    if it.lo and it.hi then
      local x1, x2, ym = PAD.l + pw * it.lo / max, PAD.l + pw * it.hi / max, y + rowh * 0.3
      body[#body + 1] = ('<line class="ci" x1="%s" y1="%s" x2="%s" y2="%s"/><line class="ci" x1="%s" y1="%s" x2="%s" y2="%s"/><line class="ci" x1="%s" y1="%s" x2="%s" y2="%s"/>')
        :format(num(x1), num(ym), num(x2), num(ym), num(x1), num(ym - 5), num(x1), num(ym + 5),
          num(x2), num(ym - 5), num(x2), num(ym + 5))
    end
    body[#body + 1] = ('<text x="%s" y="%s" class="value">%s</text>'):format(num(math.max(x, it.hi and PAD.l + pw * it.hi / max or 0) + 6),
      num(y + rowh * 0.4), esc(it.label))
  end
  return frame(id, title, table.concat(body, "\n"), part_names and legend(part_names, PART_COLORS) or nil, h)
end

local function cost_chart(rep)
  local row = rep:metric("cost")
  local items = {}
  for _, v in ipairs(rep.variants) do
    local c = v.stats.cost
    if c ~= nil then
      local ci = row and row.per == "total" and row.ci[v.name] or nil
      local label = text.fmt_value(c, "USD")
      if v.stats.cost_unknown > 0 then label = label .. (" + %d unpriced"):format(v.stats.cost_unknown) end
      items[#items + 1] = { name = v.name, parts = { c }, lo = ci and ci.lo, hi = ci and ci.hi, label = label }
    end
  end
  if #items == 0 then return no_data("chart-cost", "Cost per variant (no prices known)") end
  return hbars("chart-cost", "Total cost per variant (USD, with its interval)", items, nil,
    function(v) return text.fmt_value(v, "USD") end)
end

local function tokens_chart(rep)
  local items = {}
  for _, v in ipairs(rep.variants) do
    local t = v.stats.tokens
    items[#items + 1] = { name = v.name, parts = { t.prompt, t.completion },
      label = text.fmt_value(t.total, "tokens") }
  end
  return hbars("chart-tokens", "Tokens per variant (prompt + completion; cache hits use none)", items,
    { "prompt", "completion" }, function(v) return text.fmt_value(v, "tokens") end)
end

local function quality_chart(rep)
  local row = rep:metric("quality")
  local pct = row and row.unit == "%"
  local function fmt(v) return pct and ("%.0f%%"):format(v * 100) or ("%.2g"):format(v) end
  local items = {}
  for _, v in ipairs(rep.variants) do
    local q = v.stats.quality
    if q and q.mean then
      -- the report row's interval (Wilson's for right/wrong samples)
      local ci = row and row.ci and row.ci[v.name] or q
      items[#items + 1] = { name = v.name, parts = { math.max(q.mean, 0) }, lo = ci.lo, hi = ci.hi,
        label = ("%s (n=%d)"):format(pct and text.fmt_value(q.mean, "%") or ("%.3g"):format(q.mean), q.n) }
    end
  end
  if #items == 0 then return nil end
  return hbars("chart-quality", pct and "Accuracy per variant (with its interval)"
    or "Quality per variant (mean score, with its interval)", items, nil, fmt, pct and 1 or nil)
end

-- ---- the page -----------------------------------------------------------------------------------

local CSS = [[
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1000px;color:#1f2328;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}.sub{color:#57606a;margin:0 0 16px}
.sim{background:#fff8c5;border:1px solid #d4a72c;padding:8px 12px;border-radius:6px;font-weight:600;margin:0 0 16px}
table{border-collapse:collapse;margin:12px 0 20px;width:100%}th,td{padding:5px 10px;border-bottom:1px solid #d0d7de;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#f6f8fa}
.better{color:#1a7f37;font-weight:600}.worse{color:#d1242f;font-weight:600}.ci{stroke:#1f2328;stroke-width:1.5}
figure{margin:16px 0}.chart{max-width:100%;height:auto;background:#fff}
.plot{fill:#fbfcfd;stroke:#d0d7de}.grid{stroke:#eaeef2}.tick{font-size:11px;fill:#57606a}
.axis{font-size:12px;fill:#57606a}.title{font-size:14px;font-weight:600;fill:#1f2328}.legend{font-size:12px;fill:#1f2328}
.value{font-size:12px;fill:#1f2328}.empty{font-size:14px;fill:#8c959f}.notes{color:#57606a}
]]

function M.render(rep)
  local out = {}
  out[#out + 1] = "<!DOCTYPE html>"
  out[#out + 1] = '<html lang="en"><head><meta charset="utf-8">'
  out[#out + 1] = '<meta name="viewport" content="width=device-width,initial-scale=1">'
  out[#out + 1] = "<title>" .. esc("llmrun report: " .. rep.title) .. "</title>"
  local cases_html = rep.case_rows and require "llm.report_cases_html"
  out[#out + 1] = "<style>" .. CSS .. (cases_html and cases_html.CSS or "") .. "</style></head><body>"
  local head = text.header_lines(rep)
  out[#out + 1] = "<h1>" .. esc(head[1]) .. "</h1>"
  local i = 2
  if rep.simulated then
    out[#out + 1] = '<p class="sim" id="simulated">' .. esc(head[2]) .. "</p>"
    i = 3
  end
  out[#out + 1] = '<p class="sub">' .. esc(head[i]) .. "</p>"
  if head[i + 1] then -- REPLAYED: the answers came from a cassette (llm.replay)
    out[#out + 1] = '<p class="sim" id="replayed">' .. esc(head[i + 1]) .. "</p>"
  end

  -- the table
  out[#out + 1] = '<table id="metrics"><thead><tr><th>metric</th>'
  local others = {}
  for _, v in ipairs(rep.variants) do out[#out + 1] = "<th>" .. esc(v.name) .. "</th>" end
  for _, v in ipairs(rep.variants) do
    if v.name ~= rep.baseline then
      others[#others + 1] = v
      out[#out + 1] = "<th>" .. esc(v.name .. " vs " .. rep.baseline) .. "</th><th>verdict</th>"
    end
  end
  out[#out + 1] = "</tr></thead><tbody>"
  out[#out + 1] = "<tr><td>" .. esc(rep.count_label or "calls") .. "</td>"
  for _, v in ipairs(rep.variants) do
    out[#out + 1] = ("<td>%d (%d failed)</td>"):format(v.stats.calls, v.stats.errors)
  end
  out[#out + 1] = ("<td></td><td></td>"):rep(#others) .. "</tr>"
  for _, row in ipairs(rep.metrics) do
    out[#out + 1] = "<tr><td>" .. esc(text.label_of(row)) .. "</td>"
    for _, v in ipairs(rep.variants) do
      local c = text.fmt_value(row.values[v.name], row.unit)
      local ci = row.ci[v.name]
      if ci and row.values[v.name] ~= nil then
        c = c .. (" [%s, %s]"):format(text.fmt_value(ci.lo, row.unit), text.fmt_value(ci.hi, row.unit))
      end
      out[#out + 1] = "<td>" .. esc(c) .. "</td>"
    end
    for _, v in ipairs(others) do
      local r = row.vs[v.name] or {}
      local verdict = r.verdict or ""
      local class = (verdict == "better" or verdict == "worse") and (' class="' .. verdict .. '"') or ""
      out[#out + 1] = "<td>" .. esc(text.fmt_effect(row, r)) .. "</td><td" .. class .. ">" .. esc(verdict) .. "</td>"
    end
    out[#out + 1] = "</tr>"
  end
  out[#out + 1] = "</tbody></table>"

  out[#out + 1] = latency_cdf(rep)
  out[#out + 1] = ttft_hist(rep)
  out[#out + 1] = cost_chart(rep)
  out[#out + 1] = tokens_chart(rep)
  local q = quality_chart(rep)
  if q then out[#out + 1] = q end
  if cases_html then out[#out + 1] = cases_html.render(rep.case_rows) end
  if #rep.notes > 0 then
    out[#out + 1] = '<ul class="notes">'
    for _, n in ipairs(rep.notes) do out[#out + 1] = "<li>" .. esc(n) .. "</li>" end
    out[#out + 1] = "</ul>"
  end
  out[#out + 1] = '<p class="notes">Made by llmrun ' .. esc(require("_llm.host").version) ..
    ". Intervals: percentile bootstrap (Wilson score for accuracy); " .. (rep.count_label == "cases"
      and "latencies are per case, end to end (cache hits included, failed cases excluded).</p>"
      or "latencies exclude cache hits and failed calls.</p>")
  out[#out + 1] = "</body></html>"
  return table.concat(out, "\n") .. "\n"
end

--- Writes the page to path: path | nil, err (in a dry run, the path it
-- wrote: a dry-run name, see llm.dryrun.report_path)
function M.write(rep, path)
  if type(path) ~= "string" or path == "" then
    error("bad argument #1 to 'html' (file path expected)", 3)
  end
  path = require("llm.dryrun").report_path(path)
  local html = M.render(rep)
  local f, err = io.open(path, "w")
  if not f then return nil, err end
  local ok, werr = f:write(html)
  f:close()
  if not ok then return nil, werr end
  return path
end

return M
