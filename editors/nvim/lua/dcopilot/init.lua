--- dcopilot for Neovim: `require('dcopilot').setup(opts)` starts `dcopilot serve` through vim.lsp for
--- the configured filetypes and shows its inline completions as ghost text. The modules, one concern
--- each: config (options), server (the LSP client), ghost (own extmarks, Neovim < 0.12), native
--- (vim.lsp.inline_completion, Neovim >= 0.12), rewrite (in-line edits), health (:checkhealth).
local config = require('dcopilot.config')
local server = require('dcopilot.server')

local M = {}

---@type dcopilot.Options?
M.options = nil

--- What both renderers (ghost.lua, native.lua) provide; the rest of the plugin only talks to this.
---@class dcopilot.Renderer
---@field name 'ghost'|'native'
---@field description string                                      for :checkhealth
---@field attach fun(bufnr: integer, opts: dcopilot.Options)
---@field set_enabled fun(enable: boolean, bufnr: integer?)        nil bufnr: every buffer
---@field key fun(bufnr: integer, how: 'all'|'word'|'line'|'dismiss'): boolean  an <expr> key; false: not ours
---@field accept fun(bufnr: integer, how: 'all'|'word'|'line'): boolean
---@field dismiss fun(bufnr: integer): boolean
---@field cycle fun(bufnr: integer, step: integer)
---@field trigger fun(bufnr: integer): boolean
---@field current fun(bufnr: integer): string?

local renderer ---@type dcopilot.Renderer?

--- Whether suggestions are on for `bufnr` (`:Dcopilot disable`, globally or for the buffer, turns them off).
local function enabled(bufnr)
  return vim.g.dcopilot_enabled ~= false and vim.b[bufnr].dcopilot_enabled ~= false
end

--- Whether `bufnr` is a buffer to serve (enable/disable only pause requests; they do not detach).
local function wanted(bufnr)
  if vim.bo[bufnr].buftype ~= '' then
    return false
  end
  local ft = vim.bo[bufnr].filetype
  local opts = assert(M.options)
  if vim.tbl_contains(opts.exclude_filetypes, ft) then
    return false
  end
  return vim.tbl_contains(opts.filetypes, '*') or vim.tbl_contains(opts.filetypes, ft)
end

--- Attach `bufnr` (default: current) to the server and start showing suggestions there.
---@param bufnr integer?
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if not M.options or not wanted(bufnr) then
    return
  end
  if not server.attach(bufnr, M.options) then
    return
  end
  local r = assert(renderer)
  r.attach(bufnr, M.options)
  if not enabled(bufnr) then
    r.set_enabled(false, bufnr)
  end
end

local function map_keys(keymaps)
  -- <expr> mappings so that the key keeps its usual meaning when there is nothing to accept.
  local function expr(lhs, how, desc)
    if not lhs then
      return
    end
    -- Returned as written: an <expr> mapping's result gets its key codes replaced anyway, and replacing
    -- them twice turns <M-C-Right> into bytes that leave Neovim waiting for the rest of a key forever.
    local key = lhs
    vim.keymap.set('i', lhs, function()
      return assert(renderer).key(vim.api.nvim_get_current_buf(), how) and '' or key
    end, { expr = true, desc = 'dcopilot: ' .. desc })
  end
  local function cmd(lhs, fn, desc)
    if lhs then
      vim.keymap.set('i', lhs, function()
        fn(vim.api.nvim_get_current_buf())
      end, { desc = 'dcopilot: ' .. desc })
    end
  end
  expr(keymaps.accept, 'all', 'accept suggestion')
  expr(keymaps.accept_word, 'word', 'accept next word')
  expr(keymaps.accept_line, 'line', 'accept next line')
  expr(keymaps.dismiss, 'dismiss', 'dismiss suggestion')
  cmd(keymaps.next, function(b)
    M.cycle(b, 1)
  end, 'next suggestion')
  cmd(keymaps.prev, function(b)
    M.cycle(b, -1)
  end, 'previous suggestion')
  cmd(keymaps.trigger, function(b)
    M.trigger(b)
  end, 'suggest now')
end

--- Validate `opts`, then attach to matching buffers now and on every FileType.
---@param opts dcopilot.Options|table|nil
function M.setup(opts)
  M.options = config.build(opts)
  local native = require('dcopilot.native')
  renderer = (M.options.native == 'auto' and native.available()) and native or require('dcopilot.ghost')
  vim.api.nvim_set_hl(0, 'DcopilotSuggestion', { link = 'Comment', default = true })
  vim.api.nvim_set_hl(0, 'DcopilotSuggestionMore', { link = 'NonText', default = true })
  map_keys(M.options.keymaps)
  local group = vim.api.nvim_create_augroup('dcopilot', { clear = true })
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.bo[bufnr].filetype ~= '' then
      M.attach(bufnr)
    end
  end
end

--- Which renderer is in use: 'native' (vim.lsp.inline_completion) or 'ghost' (the plugin's own); nil
--- before setup().
---@return 'ghost'|'native'|nil
function M.renderer()
  return renderer and renderer.name
end

---@param bufnr integer?
---@param how 'all'|'word'|'line'|nil
---@return boolean accepted
function M.accept(bufnr, how)
  return renderer ~= nil and renderer.accept(bufnr or 0, how or 'all')
end

---@param bufnr integer?
function M.dismiss(bufnr)
  return renderer ~= nil and renderer.dismiss(bufnr or 0)
end

---@param bufnr integer?
---@param step integer? +1 next, -1 previous
function M.cycle(bufnr, step)
  if renderer then
    renderer.cycle(bufnr or 0, step or 1)
  end
end

--- Ask for a suggestion at the cursor now (an "invoked" request: the server may offer several).
---@param bufnr integer?
function M.trigger(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  return renderer ~= nil and renderer.trigger(bufnr)
end

--- The suggestion text still to come at the cursor, or nil (own renderer only).
---@param bufnr integer?
---@return string?
function M.current(bufnr)
  return renderer ~= nil and renderer.current(bufnr or 0) or nil
end

--- Turn suggestions on or off: for one buffer (`bufnr`, 0 = current) or, with nil, everywhere.
---@param enable boolean
---@param bufnr integer?
function M.enable(enable, bufnr)
  bufnr = bufnr == 0 and vim.api.nvim_get_current_buf() or bufnr
  if bufnr then
    vim.b[bufnr].dcopilot_enabled = enable
  else
    vim.g.dcopilot_enabled = enable
  end
  if renderer then
    renderer.set_enabled(enable, bufnr)
  end
end

--- Rewrite lines [line1, line2] (or an exact charwise selection) with an optional instruction.
---@param sel {line1: integer, line2: integer, col1: integer?, col2: integer?}
---@param instruction string?
---@param done fun(err: string?, applied: boolean, result: table?)?
function M.rewrite(sel, instruction, done)
  require('dcopilot.rewrite').run(0, sel, instruction, done)
end

--- The server's latest state: { state = 'loading'|'ready'|'busy'|'error'|'stopped', message, progress }.
function M.status()
  return server.status
end

--- A short statusline string, e.g. "dcopilot: loading 40%".
function M.statusline()
  local s = server.status
  if s.state == 'loading' and s.progress then
    return ('dcopilot: loading %d%%'):format(math.floor(s.progress * 100 + 0.5))
  end
  return 'dcopilot: ' .. s.state
end

--- Usage statistics from the server, shown in a floating window.
function M.stats()
  local client = server.client()
  if not client then
    vim.notify('dcopilot: server not running', vim.log.levels.WARN)
    return
  end
  client:request(require('dcopilot.protocol').stats, {}, function(err, result)
    if err then
      vim.notify('dcopilot stats: ' .. (err.message or tostring(err)), vim.log.levels.ERROR)
      return
    end
    local lines = vim.split(vim.inspect(result), '\n')
    vim.lsp.util.open_floating_preview(lines, 'lua', { title = 'dcopilot stats', border = 'rounded' })
  end)
end

function M.restart()
  if M.options then
    server.restart(M.options)
  end
end

return M
