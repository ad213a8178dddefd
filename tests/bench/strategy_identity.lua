-- A strategy that changes nothing: `llmrun replay --script` then measures
-- the what-if engine itself (every request takes its recorded outcome).
return { name = "unchanged", on_request = function() return nil end }
