--- Options for require('dcopilot').setup(opts): the defaults table below is the documentation.
--- Unknown keys and wrong types are errors that name the key, so a typo never silently does nothing.
local M = {}

---@class dcopilot.Keymaps
---@field accept string|false       accept the whole suggestion (falls back to the key itself)
---@field accept_word string|false  accept the next word
---@field accept_line string|false  accept the rest of the line
---@field dismiss string|false      hide the suggestion (tells the server it was rejected)
---@field next string|false         next candidate
---@field prev string|false         previous candidate
---@field trigger string|false      ask for a suggestion now

---@class dcopilot.Options
M.defaults = {
  -- Server command. nil: `dcopilot serve` from $VIRTUAL_ENV, the working directory's .venv or venv, or PATH
  -- (the first found), else `python3 -m dcopilot.copilot serve`.
  cmd = nil, ---@type string[]?
  -- Filetypes to attach to; '*' means every normal file buffer.
  filetypes = { '*' }, ---@type string[]
  -- Filetypes never attached, even with '*'.
  exclude_filetypes = { 'help', 'gitcommit', 'gitrebase', 'netrw', 'qf' }, ---@type string[]
  -- Live server settings (lsp/settings.py), e.g. { maxTokens = 48, multiline = 'never' }: enable,
  -- debounceMs, maxTokens, hypotheses, multiline, minScore, candidates, speculative, completionItems. Sent as
  -- initializationOptions; unset keys keep the server's values. Model, device and log settings are
  -- startup flags: put them in `cmd` (e.g. { 'dcopilot', 'serve', '--device', 'cuda' }) or config.toml.
  settings = {}, ---@type table<string, string|number|boolean>
  -- Request suggestions while typing (false: only through the trigger key).
  auto_trigger = true,
  -- Wait this long after the last keystroke before asking (the server debounces and cancels too).
  debounce_ms = 50,
  -- 'auto': Neovim >= 0.12 renders with vim.lsp.inline_completion; false: always use our own extmarks.
  native = 'auto', ---@type 'auto'|false
  -- Insert-mode keys; set any to false to leave that key alone.
  keymaps = {
    accept = '<Tab>',
    accept_word = '<M-Right>',
    accept_line = '<M-C-Right>',
    dismiss = '<C-]>',
    next = '<M-]>',
    prev = '<M-[>',
    trigger = '<M-\\>',
  },
}

local types = {
  cmd = { 'table', 'nil' },
  filetypes = { 'table' },
  exclude_filetypes = { 'table' },
  settings = { 'table' },
  auto_trigger = { 'boolean' },
  debounce_ms = { 'number' },
  native = { 'string', 'boolean' },
  keymaps = { 'table' },
}

local function fail(key, msg)
  error(('dcopilot.setup: option `%s`: %s'):format(key, msg), 0)
end

local function check_list(key, value)
  for i, v in ipairs(value) do
    if type(v) ~= 'string' then
      fail(key, ('item %d must be a string, got %s'):format(i, type(v)))
    end
  end
end

--- Merge `opts` over the defaults and check every key. Raises an error naming the bad key.
---@param opts table?
---@return dcopilot.Options
function M.build(opts)
  opts = opts or {}
  if type(opts) ~= 'table' then
    fail('opts', 'expected a table, got ' .. type(opts))
  end
  for key, value in pairs(opts) do
    local allowed = types[key]
    if not allowed then
      local known = vim.tbl_keys(types)
      table.sort(known)
      fail(key, 'unknown option (known: ' .. table.concat(known, ', ') .. ')')
    end
    if not vim.tbl_contains(allowed, type(value)) then
      fail(key, ('expected %s, got %s'):format(table.concat(allowed, ' or '), type(value)))
    end
  end
  for key, value in pairs(opts.keymaps or {}) do
    if M.defaults.keymaps[key] == nil then
      fail('keymaps.' .. key, 'unknown key (known: accept, accept_word, accept_line, dismiss, next, prev, trigger)')
    end
    if value ~= false and type(value) ~= 'string' then
      fail('keymaps.' .. key, 'expected a key string or false, got ' .. type(value))
    end
  end
  local merged = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts)
  -- Lists replace, never merge index-wise.
  merged.filetypes = opts.filetypes or M.defaults.filetypes
  merged.exclude_filetypes = opts.exclude_filetypes or M.defaults.exclude_filetypes
  check_list('filetypes', merged.filetypes)
  check_list('exclude_filetypes', merged.exclude_filetypes)
  if merged.cmd then
    if #merged.cmd == 0 then
      fail('cmd', 'must not be empty')
    end
    check_list('cmd', merged.cmd)
  end
  if merged.debounce_ms < 0 then
    fail('debounce_ms', 'must be >= 0')
  end
  if merged.native ~= 'auto' and merged.native ~= false then
    fail('native', "expected 'auto' or false")
  end
  for key, value in pairs(merged.settings) do
    if type(key) ~= 'string' or not vim.tbl_contains({ 'string', 'number', 'boolean' }, type(value)) then
      fail('settings', 'expected { maxTokens = 48, multiline = "never", ... } (camelCase keys, plain values)')
    end
  end
  return merged
end

return M
