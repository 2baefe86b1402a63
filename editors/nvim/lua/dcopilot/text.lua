--- Pure string helpers for ghost text: what remains to show, and how much one "accept word" or
--- "accept line" takes. No buffers, no LSP: table-tested in tests/editors/nvim/units_spec.lua.
local M = {}

--- The part of `suggestion` not yet in the buffer, given the text typed since the anchor.
--- Returns nil when the typed text diverged from the suggestion (so it must be dropped).
---@param suggestion string
---@param typed string
---@return string?
function M.remainder(suggestion, typed)
  if suggestion:sub(1, #typed) ~= typed then
    return nil
  end
  return suggestion:sub(#typed + 1)
end

--- The next word of `s`, the way editors step by words: leading blanks plus one run of word
--- characters or one run of punctuation. A line break is a step of its own.
---@param s string
---@return string
function M.next_word(s)
  if s:sub(1, 1) == '\n' then
    return '\n'
  end
  return s:match('^[ \t]*[%w_\128-\255]+') or s:match('^[ \t]*[^%w_%s\128-\255]+') or s:match('^[ \t]+') or s
end

--- The rest of the current line of `s` (without its line break); at a line break, the break plus
--- the whole next line, so repeated calls walk down the suggestion line by line.
---@param s string
---@return string
function M.next_line(s)
  if s:sub(1, 1) == '\n' then
    return '\n' .. (s:match('^\n([^\n]*)') or '')
  end
  return s:match('^[^\n]*')
end

--- Split on '\n' keeping empty lines (the shape nvim_buf_set_text wants).
---@param s string
---@return string[]
function M.lines(s)
  return vim.split(s, '\n', { plain = true })
end

return M
