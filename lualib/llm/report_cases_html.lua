-- The per-case table of an experiment's HTML report (in the spirit of
-- promptfoo's results view): one row per case with its id, input
-- (shortened), expected answer, and per variant its answer with the
-- verdict and the check's reason, cost and latency.
--
-- A small inline script (nothing fetched) adds filters (all cases,
-- failures only, disagreements between variants) and sorting by any
-- column (click a header; again to reverse). Without the script every
-- row is shown, in case order. The page's address may preset both:
--   report.html#filter=failures&sort=latency-2:desc
-- (filter: all | failures | disagreements; sort: a header's data-key,
-- "case", "input", "expected", or "verdict-N", "cost-N", "latency-N" for
-- the Nth variant, then :asc or :desc), which is also how the browser
-- check in scripts/check_report_html tests them.
local text = require "llm.report_text"
local cases_view = require "llm.experiment_cases"

local M = {}

local function esc(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
    ['"'] = "&quot;", ["'"] = "&#39;" }))
end

local function clip(s, n)
  if s == nil then return "" end
  s = tostring(s)
  if (utf8.len(s) or #s) <= n then return s end
  return s:sub(1, (utf8.offset(s, n) or n) - 1) .. "…"
end

M.CSS = [[
#cases-section h2{font-size:18px;margin:28px 0 6px}
.case-filters{display:flex;gap:16px;align-items:center;margin:6px 0;color:#1f2328}
.case-filters label{cursor:pointer}#cases-shown{color:#57606a}
table.cases td,table.cases th{white-space:normal;text-align:left;vertical-align:top}
table.cases td{max-width:340px;overflow-wrap:anywhere}table.cases td.num{text-align:right;white-space:nowrap}
table.cases th[data-key]{cursor:pointer;user-select:none}
table.cases th[aria-sort=ascending]::after{content:" ▲"}table.cases th[aria-sort=descending]::after{content:" ▼"}
table.cases tr[hidden]{display:none}table.cases tbody tr:hover{background:#f6f8fa}
.verdict{font-weight:600;font-size:12px;padding:1px 6px;border-radius:10px;margin-right:6px}
.v-pass{background:#dafbe1;color:#1a7f37}.v-fail{background:#ffebe9;color:#d1242f}
.v-error{background:#fff1e5;color:#9a6700}.v-none{background:#eaeef2;color:#57606a}
.out{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px}
.reason{display:block;color:#57606a;font-size:12px;margin-top:2px}
]]

-- Filters and sorting; rows keep data-failed / data-disagree flags and
-- cells a data-sort value.
M.SCRIPT = [==[
(function () {
  var table = document.getElementById("cases");
  if (!table) return;
  var body = table.tBodies[0], heads = table.tHead.rows[0].cells;
  function filter(name) {
    var shown = 0;
    for (var i = 0; i < body.rows.length; i++) {
      var tr = body.rows[i];
      var on = name === "failures" ? tr.dataset.failed === "1"
             : name === "disagreements" ? tr.dataset.disagree === "1" : true;
      tr.hidden = !on;
      if (on) shown++;
    }
    var boxes = document.querySelectorAll("input[name=case-filter]");
    for (var j = 0; j < boxes.length; j++) boxes[j].checked = boxes[j].value === name;
    document.getElementById("cases-shown").textContent = shown + " of " + body.rows.length + " shown";
    table.dataset.filter = name;
  }
  function sort(key, dir) {
    var col = -1;
    for (var i = 0; i < heads.length; i++) {
      if (heads[i].dataset.key === key) col = i;
      heads[i].removeAttribute("aria-sort");
    }
    if (col < 0) return;
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
      if (x === "" && y !== "") return 1;   // unknown values last, either way
      if (y === "" && x !== "") return -1;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
      if (c === 0) c = a.dataset.index - b.dataset.index;
      return dir === "desc" ? -c : c;
    });
    for (var k = 0; k < rows.length; k++) body.appendChild(rows[k]);
    heads[col].setAttribute("aria-sort", dir === "desc" ? "descending" : "ascending");
    table.dataset.sort = key + ":" + dir;
  }
  for (var i = 0; i < heads.length; i++) {
    if (!heads[i].dataset.key) continue;
    heads[i].addEventListener("click", function (ev) {
      var key = ev.currentTarget.dataset.key;
      var now = table.dataset.sort || "";
      sort(key, now === key + ":asc" ? "desc" : "asc");
    });
  }
  var boxes = document.querySelectorAll("input[name=case-filter]");
  for (var j = 0; j < boxes.length; j++) {
    boxes[j].addEventListener("change", function (ev) { filter(ev.currentTarget.value); });
  }
  var want = {};
  location.hash.replace(/^#/, "").split("&").forEach(function (kv) {
    var p = kv.split("=");
    if (p.length === 2) want[p[0]] = decodeURIComponent(p[1]);
  });
  filter(want.filter || "all");
  if (want.sort) {
    var s = want.sort.split(":");
    sort(s[0], s[1] === "desc" ? "desc" : "asc");
  }
})();
]==]

local function verdict_cell(c)
  if c.error then return "error", "v-error", "ERROR" end
  if c.pass == nil then return "", "v-none", "–" end
  local label = cases_view.verdict_text(c)
  if c.runs <= 1 and c.score ~= nil and c.score ~= 0 and c.score ~= 1 then
    label = label .. (" %.2f"):format(c.score)
  end
  return c.pass and "pass" or "fail", c.pass and "v-pass" or "v-fail", label
end

--- The section's HTML for rows (cmp:cases()).
function M.render(rows)
  local out = {}
  local nfail, ndis = 0, 0
  for _, r in ipairs(rows) do
    if r.failed then nfail = nfail + 1 end
    if r.disagree then ndis = ndis + 1 end
  end
  out[#out + 1] = '<section id="cases-section"><h2>Cases</h2>'
  out[#out + 1] = '<div class="case-filters" id="case-filters">'
  out[#out + 1] = ('<label><input type="radio" name="case-filter" value="all" checked> all (%d)</label>'):format(#rows)
  out[#out + 1] = ('<label><input type="radio" name="case-filter" value="failures"> failures only (%d)</label>')
    :format(nfail)
  out[#out + 1] = ('<label><input type="radio" name="case-filter" value="disagreements"> disagreements between variants (%d)</label>')
    :format(ndis)
  out[#out + 1] = ('<span id="cases-shown">%d of %d shown</span></div>'):format(#rows, #rows)
  out[#out + 1] = '<table id="cases" class="cases"><thead><tr>'
  out[#out + 1] = '<th data-key="case">case</th><th data-key="input">input</th><th data-key="expected">expected</th>'
  for i, name in ipairs(rows.order) do
    out[#out + 1] = ('<th data-key="verdict-%d">%s</th><th data-key="cost-%d">cost</th><th data-key="latency-%d">latency</th>')
      :format(i, esc(name), i, i)
  end
  out[#out + 1] = "</tr></thead><tbody>"
  for n, r in ipairs(rows) do
    out[#out + 1] = ('<tr data-index="%d" data-case="%s" data-failed="%d" data-disagree="%d">'):format(n, esc(r.id),
      r.failed and 1 or 0, r.disagree and 1 or 0)
    out[#out + 1] = ('<td data-sort="%d">%s</td><td data-sort="%s">%s</td><td data-sort="%s" class="out">%s</td>')
      :format(n, esc(r.id), esc(r.input or ""), esc(r.input or ""), esc(r.expected or ""), esc(clip(r.expected, 200)))
    for _, name in ipairs(rows.order) do
      local c = r.variants[name]
      if not c then
        out[#out + 1] = '<td data-sort=""></td><td data-sort="" class="num"></td><td data-sort="" class="num"></td>'
      else
        local kind, class, label = verdict_cell(c)
        -- sort by verdict: errors, then failures, then passes (by score)
        local key = kind == "error" and -1 or kind == "" and "" or (c.pass and 1 or 0) + (c.score or 0) / 10
        local body = c.error and esc(clip(c.error, 300)) or esc(clip(c.output or "", 300))
        local reason = (not c.error and c.reason) and ('<span class="reason">' .. esc(clip(c.reason, 200)) .. "</span>") or ""
        out[#out + 1] = ('<td data-sort="%s" data-verdict="%s" title="%s"><span class="verdict %s">%s</span><span class="out">%s</span>%s</td>')
          :format(key, kind, esc(clip(c.output or c.error or "", 2000)), class, esc(label), body, reason)
        out[#out + 1] = ('<td class="num" data-sort="%s">%s</td><td class="num" data-sort="%s">%s</td>'):format(
          c.cost or "", c.cost and esc(text.fmt_value(c.cost, "USD")) or "?",
          c.latency_ms or "", c.latency_ms and esc(text.fmt_value(c.latency_ms, "ms")) or "")
      end
    end
    out[#out + 1] = "</tr>"
  end
  out[#out + 1] = "</tbody></table>"
  out[#out + 1] = '<p class="notes">Per case: the first run\'s answer (with repeats, the verdict is passes/runs and cost '
    .. "and latency are means over the runs); a case has failed when any variant failed or raised on it; variants "
    .. "disagree when their verdicts (or, with no check, their normalized answers) differ. Click a header to sort.</p>"
  out[#out + 1] = "<script>" .. M.SCRIPT .. "</script></section>"
  return table.concat(out, "\n")
end

return M
