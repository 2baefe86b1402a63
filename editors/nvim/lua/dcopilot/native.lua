--- Neovim >= 0.12: ghost text from the built-in vim.lsp.inline_completion. We only add what core lacks:
--- accept word / line (through `get({ on_accept })`) and the partial-accept notification. Core runs each
--- item's `command` on a full accept, which is how the server counts it. Core sends no did-show or
--- did-reject, so the server's acceptance rate is only exact with the plugin's own renderer.
local protocol = require('dcopilot.protocol')
local text = require('dcopilot.text')

local M = {}

M.name = 'native'
M.description = 'vim.lsp.inline_completion (built in)'

function M.available()
  return vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.get ~= nil
end

---@param bufnr integer
function M.attach(bufnr, _)
  vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
end

--- Turn core's requests on or off for one buffer, or for all with nil.
---@param enable boolean
---@param bufnr integer?
function M.set_enabled(enable, bufnr)
  vim.lsp.inline_completion.enable(enable, bufnr and { bufnr = bufnr } or nil)
end

---@param bufnr integer
function M.detach(bufnr)
  vim.lsp.inline_completion.enable(false, { bufnr = bufnr })
end

--- The byte column where an item's range starts: a vim.Range (Neovim 0.12 releases: `start_col`) or, in
--- 0.12 pre-releases, a table with `start.col`.
local function item_start_col(range)
  if not range then
    return nil
  end
  return range.start_col or (range.start and range.start.col)
end

--- Insert part of `item` at the cursor; the rest comes back with core's next automatic request.
local function accept_part(bufnr, item, how)
  local insert = item.insert_text
  local value = type(insert) == 'string' and insert or insert.value
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  row = row - 1
  local start_col = item_start_col(item.range) or col
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
  local rest = text.remainder(value, line:sub(start_col + 1, col))
  if not rest or rest == '' then
    return
  end
  local piece = how == 'word' and text.next_word(rest) or text.next_line(rest)
  local lines = text.lines(piece)
  vim.api.nvim_buf_set_text(bufnr, row, col, row, col, lines)
  local last = #lines == 1 and col + #lines[1] or #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { row + #lines, last })
  local client = vim.lsp.get_client_by_id(item.client_id)
  local raw = { command = item.command }
  if client and protocol.id(raw) then
    local taken = value:sub(1, (col - start_col) + #piece)
    client:notify(protocol.did_accept, protocol.accept_params(raw, taken, client.offset_encoding))
  end
end

---@param bufnr integer
---@param how 'all'|'word'|'line'
---@return boolean
function M.accept(bufnr, how)
  if how == 'all' then
    return vim.lsp.inline_completion.get({ bufnr = bufnr })
  end
  return vim.lsp.inline_completion.get({
    bufnr = bufnr,
    on_accept = function(item)
      accept_part(bufnr, item, how)
    end,
  })
end

function M.cycle(_, step)
  vim.lsp.inline_completion.select({ count = step })
end

--- Core has no public "hide": leaving and re-entering the request state is the closest.
function M.dismiss(bufnr)
  if not vim.lsp.inline_completion.is_enabled({ bufnr = bufnr }) then
    return false
  end
  M.detach(bufnr)
  M.attach(bufnr)
  return true
end

--- For an <expr> key. Core schedules its own edit, so accepting here is safe; it has no "is there a
--- suggestion" query, so dismiss always takes the key.
---@param bufnr integer
---@param how 'all'|'word'|'line'|'dismiss'
---@return boolean
function M.key(bufnr, how)
  if how == 'dismiss' then
    vim.schedule(function()
      M.dismiss(bufnr)
    end)
    return true
  end
  return M.accept(bufnr, how)
end

--- Core requests by itself (InsertEnter, CursorMovedI, 200 ms debounce) and has no "ask now".
function M.trigger(_)
  return false
end

function M.current(_)
  return nil
end

return M
