--- Ghost text drawn by the plugin itself (Neovim < 0.12, or `native = false`): per-buffer state, a
--- debounced `textDocument/inlineCompletion` request with the previous one cancelled, and extmarks in
--- our own namespace. While typing, the only work is comparing the typed text with the suggestion and
--- moving one extmark; anything else (requests, notifications) happens off the keystroke.
local protocol = require('dcopilot.protocol')
local server = require('dcopilot.server')
local text = require('dcopilot.text')

local api = vim.api
local M = {}

M.name = 'ghost'
M.description = 'own extmarks'
M.ns = api.nvim_create_namespace('dcopilot.ghost')

---@class dcopilot.Item
---@field text string        text that replaces [anchor, cursor + absorb)
---@field absorb integer     bytes right of the request cursor the item replaces (auto-closed brackets)
---@field raw table          the LSP item, echoed back in notifications
---@field shown boolean?

---@class dcopilot.Ghost
---@field bufnr integer
---@field timer uv.uv_timer_t?
---@field request {id: integer, client: vim.lsp.Client}?
---@field items dcopilot.Item[]
---@field index integer
---@field anchor [integer, integer]?  0-based row, byte col where the items' text starts
---@field after string?               line text right of the cursor when the items were asked for
---@field typed string?               part of the current item already in the buffer
---@field accepted integer            bytes of the current item the user accepted so far
---@field extmark integer?

---@type table<integer, dcopilot.Ghost>
M.buffers = {}

---@type dcopilot.Options
local opts

local function cursor()
  local pos = api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

local function hide(g)
  if g.extmark then
    pcall(api.nvim_buf_del_extmark, g.bufnr, M.ns, g.extmark)
    g.extmark = nil
  end
end

--- Forget the suggestions; tell the server they were rejected unless some of it was accepted.
---@param g dcopilot.Ghost
---@param reason 'dismissed'|'diverged'|'accepted'|'replaced'
local function clear(g, reason)
  local item = g.items[g.index]
  -- Replaced by a newer answer at the same place (e.g. asking for more candidates) is not a reject.
  local rejected = reason == 'dismissed' or reason == 'diverged'
  if item and item.shown and g.accepted == 0 and rejected and protocol.id(item.raw) then
    server.notify(g.bufnr, protocol.did_reject, protocol.reject_params(item.raw))
  end
  hide(g)
  g.items, g.index, g.anchor, g.after, g.typed, g.accepted = {}, 1, nil, nil, nil, 0
end

local function cancel_request(g)
  if g.request then
    pcall(function()
      g.request.client:cancel_request(g.request.id)
    end)
    g.request = nil
  end
  if g.timer then
    g.timer:stop()
  end
end

--- The current item's remainder if the buffer still agrees with it, else nil.
---@param g dcopilot.Ghost
---@return string?
local function remainder(g)
  local item = g.items[g.index]
  if not item or not g.anchor then
    return nil
  end
  local row, col = cursor()
  if row < g.anchor[1] or (row == g.anchor[1] and col < g.anchor[2]) then
    return nil
  end
  local line = api.nvim_buf_get_lines(g.bufnr, row, row + 1, false)[1] or ''
  if line:sub(col + 1) ~= g.after then
    return nil
  end
  local typed = table.concat(api.nvim_buf_get_text(g.bufnr, g.anchor[1], g.anchor[2], row, col, {}), '\n')
  g.typed = typed
  return text.remainder(item.text, typed)
end

--- Draw the current item's remainder at the cursor (one extmark, updated in place).
---@param g dcopilot.Ghost
---@param rest string
local function draw(g, rest)
  local item = g.items[g.index]
  local lines = text.lines(rest)
  local first = lines[1]
  -- Text the item absorbs is already on screen right of the cursor: don't draw it twice.
  local absorbed = g.after:sub(1, item.absorb)
  if #lines == 1 and item.absorb > 0 and first:sub(-#absorbed) == absorbed then
    first = first:sub(1, #first - #absorbed)
  end
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], 'DcopilotSuggestion' } }
  end
  local virt_text = { { first, 'DcopilotSuggestion' } }
  if #g.items > 1 then
    local hint = { (' (%d/%d)'):format(g.index, #g.items), 'DcopilotSuggestionMore' }
    table.insert(#virt_lines > 0 and virt_lines[#virt_lines] or virt_text, hint)
  end
  local row, col = cursor()
  g.extmark = api.nvim_buf_set_extmark(g.bufnr, M.ns, row, col, {
    id = g.extmark,
    virt_text = virt_text,
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
    right_gravity = false,
  })
  if not item.shown then
    item.shown = true
    if protocol.id(item.raw) then
      vim.schedule(function()
        server.notify(g.bufnr, protocol.did_show, protocol.show_params(item.raw))
      end)
    end
  end
end

--- Re-check the suggestion against the buffer after a keystroke: trim it, or drop it.
---@param g dcopilot.Ghost
---@return boolean still_showing
local function refresh(g)
  if #g.items == 0 then
    return false
  end
  local rest = remainder(g)
  if rest == nil then
    clear(g, 'diverged')
    return false
  end
  if rest == '' then
    -- Typed to the end by hand: nothing left to show, and neither an accept nor a reject.
    clear(g, 'accepted')
    return false
  end
  draw(g, rest)
  return true
end

--- Turn an LSP item into ours: byte anchor and how much right of the cursor it replaces.
local function normalize(raw, req, encoding)
  local insert = raw.insertText
  if type(insert) == 'table' then
    -- A snippet: show and insert its plain text (placeholders become their defaults).
    local ok, parsed = pcall(function()
      return tostring(require('vim.lsp._snippet_grammar').parse(insert.value))
    end)
    insert = ok and parsed or insert.value
  end
  if type(insert) ~= 'string' or insert == '' then
    return nil
  end
  local anchor, absorb = { req.row, req.col }, 0
  if raw.range then
    local s, e = raw.range.start, raw.range['end']
    if s.line ~= req.row or e.line ~= req.row then
      return nil -- the spec allows only single-line ranges; anything else is not for us to guess
    end
    local scol = vim.str_byteindex(req.line, encoding, s.character, false)
    local ecol = vim.str_byteindex(req.line, encoding, e.character, false)
    if scol > req.col or ecol < req.col then
      return nil
    end
    anchor, absorb = { req.row, scol }, ecol - req.col
  end
  return { text = insert, absorb = absorb, raw = raw, anchor = anchor }
end

---@param g dcopilot.Ghost
---@param kind integer InlineCompletionTriggerKind
function M.request(g, kind)
  cancel_request(g)
  local client = server.client_for(g.bufnr)
  if not client or api.nvim_get_current_buf() ~= g.bufnr then
    return
  end
  local row, col = cursor()
  local line = api.nvim_buf_get_lines(g.bufnr, row, row + 1, false)[1] or ''
  local req = { row = row, col = col, line = line, after = line:sub(col + 1) }
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = kind }
  local ok, id
  ok, id = client:request(protocol.inline_completion, params, function(err, result)
    if not g.request or g.request.id ~= id then
      return -- superseded
    end
    g.request = nil
    if err or not result or not api.nvim_buf_is_valid(g.bufnr) then
      return
    end
    if not vim.startswith(api.nvim_get_mode().mode, 'i') or api.nvim_get_current_buf() ~= g.bufnr then
      return
    end
    local items = {}
    for _, raw in ipairs(result.items or result) do
      local item = normalize(raw, req, client.offset_encoding)
      -- All items must share one anchor to be cycled at the same place.
      if item and (#items == 0 or (item.anchor[1] == items[1].anchor[1] and item.anchor[2] == items[1].anchor[2])) then
        items[#items + 1] = item
      end
    end
    if #items == 0 then
      return
    end
    clear(g, 'replaced')
    g.items, g.index, g.anchor, g.after = items, 1, items[1].anchor, req.after
    refresh(g)
  end, g.bufnr)
  if ok then
    g.request = { id = id, client = client }
  end
end

local function schedule_request(g)
  if not g.timer then
    g.timer = assert(vim.uv.new_timer())
  end
  g.timer:stop()
  g.timer:start(
    opts.debounce_ms,
    0,
    vim.schedule_wrap(function()
      if api.nvim_buf_is_valid(g.bufnr) and vim.startswith(api.nvim_get_mode().mode, 'i') then
        M.request(g, protocol.trigger_automatic)
      end
    end)
  )
end

---@param bufnr integer
---@return dcopilot.Ghost?
function M.get(bufnr)
  return M.buffers[bufnr == 0 and api.nvim_get_current_buf() or bufnr]
end

--- Start drawing suggestions in `bufnr`.
---@param bufnr integer
---@param options dcopilot.Options
function M.attach(bufnr, options)
  opts = options
  if M.buffers[bufnr] then
    return
  end
  local g = { bufnr = bufnr, items = {}, index = 1, accepted = 0 }
  M.buffers[bufnr] = g
  local group = api.nvim_create_augroup('dcopilot.ghost.' .. bufnr, { clear = true })
  api.nvim_create_autocmd('TextChangedI', {
    group = group,
    buffer = bufnr,
    callback = function()
      local on = vim.g.dcopilot_enabled ~= false and vim.b[bufnr].dcopilot_enabled ~= false
      if not refresh(g) and opts.auto_trigger and on then
        schedule_request(g)
      end
    end,
  })
  api.nvim_create_autocmd('CursorMovedI', {
    group = group,
    buffer = bufnr,
    callback = function()
      refresh(g)
    end,
  })
  api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      cancel_request(g)
      clear(g, 'dismissed')
    end,
  })
  api.nvim_create_autocmd({ 'BufUnload', 'BufWipeout' }, {
    group = group,
    buffer = bufnr,
    once = true,
    callback = function()
      M.detach(bufnr)
    end,
  })
end

---@param bufnr integer
function M.detach(bufnr)
  local g = M.buffers[bufnr]
  if not g then
    return
  end
  cancel_request(g)
  if g.timer then
    g.timer:close()
  end
  hide(g)
  pcall(api.nvim_del_augroup_by_name, 'dcopilot.ghost.' .. bufnr)
  M.buffers[bufnr] = nil
end

--- Insert `piece` of the current item at the cursor. `whole` also replaces the absorbed text.
---@param g dcopilot.Ghost
---@param piece string
---@param whole boolean
local function insert(g, piece, whole)
  local item = g.items[g.index]
  local row, col = cursor()
  local lines = text.lines(piece)
  local stop = whole and math.min(col + item.absorb, col + #g.after) or col
  api.nvim_buf_set_text(g.bufnr, row, col, row, stop, lines)
  if whole then
    g.after = g.after:sub(stop - col + 1)
  end
  local last = #lines == 1 and col + #lines[1] or #lines[#lines]
  api.nvim_win_set_cursor(0, { row + #lines, last })
end

--- Accept all, a word, or a line of the current suggestion. Returns false when there is none.
---@param bufnr integer
---@param how 'all'|'word'|'line'
---@return boolean
function M.accept(bufnr, how)
  local g = M.get(bufnr)
  if not g then
    return false
  end
  local rest = remainder(g)
  if not rest or rest == '' then
    return false
  end
  local item = g.items[g.index]
  local piece = how == 'word' and text.next_word(rest) or how == 'line' and text.next_line(rest) or rest
  local whole = #piece == #rest
  insert(g, piece, whole)
  local client = server.client_for(g.bufnr)
  if whole then
    hide(g)
    g.items, g.index, g.anchor, g.after, g.typed, g.accepted = {}, 1, nil, nil, nil, 0
    -- A full accept runs the item's command, as LSP says; the server counts it from there.
    if client and item.raw.command then
      client:exec_cmd(item.raw.command, { bufnr = g.bufnr })
    end
  else
    g.accepted = #g.typed + #piece
    if client and protocol.id(item.raw) then
      local taken = item.text:sub(1, g.accepted)
      client:notify(protocol.did_accept, protocol.accept_params(item.raw, taken, client.offset_encoding))
    end
    -- Keep showing the rest without waiting for TextChangedI.
    refresh(g)
  end
  return true
end

--- Hide the suggestion (the server hears it was rejected). Returns false when none was shown.
---@param bufnr integer
---@return boolean
function M.dismiss(bufnr)
  local g = M.get(bufnr)
  if not g or #g.items == 0 then
    return false
  end
  cancel_request(g)
  clear(g, 'dismissed')
  return true
end

--- For an <expr> key: whether a suggestion is showing. The buffer cannot be edited while an <expr>
--- mapping runs, so the accept or dismiss happens right after.
---@param bufnr integer
---@param how 'all'|'word'|'line'|'dismiss'
---@return boolean
function M.key(bufnr, how)
  if M.current(bufnr) == nil then
    return false
  end
  vim.schedule(function()
    if how == 'dismiss' then
      M.dismiss(bufnr)
    else
      M.accept(bufnr, how)
    end
  end)
  return true
end

--- Turning suggestions off hides the one showing; TextChangedI reads the switch before asking again.
---@param enable boolean
---@param bufnr integer?
function M.set_enabled(enable, bufnr)
  if not enable then
    M.dismiss(bufnr or api.nvim_get_current_buf())
  end
end

--- Ask for suggestions at the cursor now (an "invoked" request: the server may offer several).
---@param bufnr integer
---@return boolean asked
function M.trigger(bufnr)
  local g = M.get(bufnr)
  if not g then
    return false
  end
  M.request(g, protocol.trigger_invoked)
  return true
end

--- Show the next (+1) or previous (-1) candidate; with one candidate, ask for more.
---@param bufnr integer
---@param step integer
function M.cycle(bufnr, step)
  local g = M.get(bufnr)
  if not g then
    return
  end
  if #g.items <= 1 then
    M.request(g, protocol.trigger_invoked)
    return
  end
  g.index = (g.index - 1 + step) % #g.items + 1
  g.accepted = 0
  refresh(g)
end

--- The suggestion text still to come at the cursor, or nil (for statuslines and tests).
---@param bufnr integer
---@return string?
function M.current(bufnr)
  local g = M.get(bufnr)
  if not g or #g.items == 0 then
    return nil
  end
  return remainder(g)
end

return M
