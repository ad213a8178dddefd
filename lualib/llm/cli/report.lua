-- llmrun report: a comparison report of logged runs (the latest by default).
local cli = require "llm.cli"

local C = {}
C.summary = "report on logged runs: latency, TTFT, tokens, cost, with intervals"
C.usage = [[
usage: llmrun report [RUN...] [--by tag|model] [--html FILE] [--json | --markdown | --csv]
                     [--reprice MODEL_OR_TABLE]

Reports on RUN (an id or a unique prefix; default: the latest run started
in the current directory, else the latest of all, and it says which) from
the call log. Within one run, the calls are grouped by tag (or model) and
the groups compared, "baseline" (or "before", else the first) being the
baseline; with several runs, each run's groups are compared to the first.
Every metric gets a ratio or difference with a 95% bootstrap interval and
a verdict: better, worse or no clear difference.

  --by tag|model|none         how to group a run's calls (default: tag)
  --html FILE                 also write a self-contained HTML report with charts
  --json, --markdown, --csv   print the report in that format instead of the table
  --reprice MODEL_OR_TABLE    add what the calls would cost at other prices:
                              a model's (gpt-4o-mini), "batch" (Batch API),
                              "cache_discount=0.9", a comma list of those
                              (gpt-4o-mini,batch), a table "{input=1e-6,
                              output=4e-6}", or a .json/.lua price table file.
                              Nothing is called.
]]

local spec = {
  ["--html"] = "html", ["--json"] = true, ["--markdown"] = true, ["--csv"] = true,
  ["--reprice"] = "reprice", ["--by"] = "by",
}

function C.main(args)
  local opts, runs = cli.parse(args, spec)
  local formats = (opts.json and 1 or 0) + (opts.markdown and 1 or 0) + (opts.csv and 1 or 0)
  if formats > 1 then cli.usage_error("give at most one of --json, --markdown, --csv") end
  if opts.by and opts.by ~= "tag" and opts.by ~= "model" and opts.by ~= "none" then
    cli.usage_error("--by takes tag, model or none, not %s", opts.by)
  end
  local host = require "_llm.host"
  local rep, err = require("llm.report").from_log { runs = runs, by = opts.by, reprice = opts.reprice,
    cwd = host.cwd and host.cwd() or nil }
  if not rep then
    io.stderr:write("llmrun report: ", err, "\n")
    return 1
  end
  if rep.chosen then
    local c = rep.chosen
    local script = c.script or "?"
    local ok, args = pcall(require("cjson").decode, c.args or "[]")
    if ok and type(args) == "table" and #args > 0 then
      for i = 1, #args do args[i] = tostring(args[i]) end
      script = script .. " " .. table.concat(args, " ")
    end
    if #script > 100 then script = script:sub(1, 97) .. "..." end
    io.stderr:write(("llmrun report: run %s (%s: %s, started %s); name a run to choose another "
      .. "(llmrun logs --runs lists them)\n"):format(c.run, c.why,
      require("llm.untrusted").escape(script), c.started_at and os.date("%Y-%m-%d %H:%M:%S",
      math.floor(c.started_at)) or "?"))
  end
  if opts.json then
    io.stdout:write(rep:json())
  elseif opts.markdown then
    io.stdout:write(rep:markdown())
  elseif opts.csv then
    io.stdout:write(rep:csv())
  else
    rep:print()
  end
  if opts.html then
    local ok, herr = rep:html(opts.html)
    if not ok then
      io.stderr:write("llmrun report: cannot write ", opts.html, ": ", tostring(herr), "\n")
      return 1
    end
    io.stderr:write("llmrun report: wrote ", opts.html, "\n")
  end
  return 0
end

return C
