-- Reading chat messages as llm.model takes them ({role=, content=}, the
-- content a string or a list of parts): one place for "the text of this
-- content" and "the last user message", which caches, checks and routers
-- all ask.
local M = {}

--- The text of a content: a string as it is; the text parts of a list
-- joined by line breaks; nil when there is none (images only, no content).
function M.content_text(content)
  if type(content) == "string" then return content end
  if type(content) ~= "table" then return nil end
  local parts = {}
  for _, p in ipairs(content) do
    if type(p) == "table" and p.type == "text" and type(p.text) == "string" then
      parts[#parts + 1] = p.text
    end
  end
  if #parts == 0 then return nil end
  return table.concat(parts, "\n")
end

--- The text of the last user message of a list, and its index; nil when
-- the last user message has no text (or there is none).
function M.last_user_text(messages)
  local msgs = messages or {}
  for i = #msgs, 1, -1 do
    local m = msgs[i]
    if type(m) == "table" and m.role == "user" then
      local text = M.content_text(m.content)
      if text then return text, i end
      return nil
    end
  end
  return nil
end

return M
