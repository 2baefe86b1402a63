-- Table tests of the plugin's pure parts (text.lua, config.lua), run with `nvim -l`.
local failures = {}
local function check(what, expected, actual)
  if not vim.deep_equal(expected, actual) then
    failures[#failures + 1] = ('%s: expected %s, got %s'):format(what, vim.inspect(expected), vim.inspect(actual))
  end
end

local text = require('dcopilot.text')

for _, c in ipairs({
  { 'return a', '', 'return a' },
  { 'return a', 'ret', 'urn a' },
  { 'return a', 'return a', '' },
  { 'return a', 'rex', nil },
  { 'a\nb', 'a\n', 'b' },
  { 'é', 'é', '' },
}) do
  check(('remainder(%q, %q)'):format(c[1], c[2]), c[3], text.remainder(c[1], c[2]))
end

for _, c in ipairs({
  { 'foo(bar)', 'foo' },
  { '(bar)', '(' },
  { '  bar baz', '  bar' },
  { ' == 1', ' ==' },
  { '\n    x', '\n' },
  { 'snake_case1 x', 'snake_case1' },
  { 'données = 1', 'données' },
  { '   ', '   ' },
  { ')', ')' },
  { '', '' },
}) do
  check(('next_word(%q)'):format(c[1]), c[2], text.next_word(c[1]))
end

for _, c in ipairs({
  { 'lo(name):\n    print(name)', 'lo(name):' },
  { '\n    print(name)\nx', '\n    print(name)' },
  { 'single', 'single' },
  { '\n', '\n' },
  { '', '' },
}) do
  check(('next_line(%q)'):format(c[1]), c[2], text.next_line(c[1]))
end

check('lines', { 'a', '', 'b' }, text.lines('a\n\nb'))

local config = require('dcopilot.config')
check('defaults', config.defaults.keymaps.accept, config.build().keymaps.accept)
local merged = config.build({ keymaps = { accept = false }, filetypes = { 'lua' }, settings = { maxTokens = 32 } })
check('keymap off', false, merged.keymaps.accept)
check('other keymaps kept', '<M-Right>', merged.keymaps.accept_word)
check('list replaced', { 'lua' }, merged.filetypes)
check('settings', { maxTokens = 32 }, merged.settings)

for _, c in ipairs({
  { { debounce = 10 }, 'option `debounce`: unknown option' },
  { { debounce_ms = '10' }, 'option `debounce_ms`: expected number, got string' },
  { { debounce_ms = -1 }, 'option `debounce_ms`: must be >= 0' },
  { { filetypes = { 1 } }, 'option `filetypes`: item 1 must be a string' },
  { { cmd = {} }, 'option `cmd`: must not be empty' },
  { { keymaps = { acept = '<Tab>' } }, 'option `keymaps.acept`: unknown key' },
  { { keymaps = { accept = true } }, 'option `keymaps.accept`: expected a key string or false' },
  { { native = 'yes' }, "option `native`: expected 'auto' or false" },
  { { settings = { 3 } }, 'option `settings`: expected' },
  { 'fast', 'option `opts`: expected a table' },
}) do
  local ok, err = pcall(config.build, c[1])
  check('error for ' .. vim.inspect(c[1]), true, not ok and err:find(c[2], 1, true) ~= nil or err)
end

-- Every file of the plugin at least compiles (the 0.12-only module included, which cannot run here).
local root = vim.api.nvim_get_runtime_file('lua/dcopilot/init.lua', false)[1]:gsub('/lua/dcopilot/init.lua$', '')
local files = vim.fn.glob(root .. '/**/*.lua', false, true)
check('plugin files found', true, #files >= 10)
for _, file in ipairs(files) do
  local chunk, err = loadfile(file)
  check('compiles: ' .. file, true, chunk ~= nil or err)
end
check('native renderer only on 0.12+', vim.fn.has('nvim-0.12') == 1, require('dcopilot.native').available())

-- Both renderers offer the whole interface init.lua uses (dcopilot.Renderer), so it never asks which it has.
for _, name in ipairs({ 'ghost', 'native' }) do
  local r = require('dcopilot.' .. name)
  check(name .. '.name', name, r.name)
  check(name .. '.description', 'string', type(r.description))
  for _, fn in ipairs({ 'attach', 'set_enabled', 'key', 'accept', 'dismiss', 'cycle', 'trigger', 'current' }) do
    check(name .. '.' .. fn, 'function', type(r[fn]))
  end
end

-- The server command: setup's `cmd`, then $VIRTUAL_ENV, the working directory's .venv/venv, PATH, then python3.
local server = require('dcopilot.server')
local function fake_exe(dir)
  vim.fn.mkdir(dir, 'p')
  local file = dir .. '/dcopilot'
  vim.fn.writefile({ '#!/bin/sh' }, file)
  vim.fn.setfperm(file, 'rwxr-xr-x')
  return file
end
local tmp = vim.fn.tempname()
local env_exe, path_exe = fake_exe(tmp .. '/env/bin'), fake_exe(tmp .. '/path')
vim.fn.mkdir(tmp .. '/work', 'p')
vim.fn.chdir(tmp .. '/work')
vim.env.VIRTUAL_ENV = nil -- the test's own, not the one the suite may run in
vim.env.PATH = tmp .. '/path:' .. vim.env.PATH
check('a fake dcopilot on PATH', 1, vim.fn.executable(path_exe))
check('cmd from setup wins', { 'x', 'serve' }, server.resolve_cmd({ 'x', 'serve' }))
check('PATH', { 'dcopilot', 'serve' }, server.resolve_cmd(nil))
local dot_venv = fake_exe(tmp .. '/work/.venv/bin')
check('working directory .venv before PATH', { dot_venv, 'serve' }, server.resolve_cmd(nil))
vim.env.VIRTUAL_ENV = tmp .. '/env'
check('$VIRTUAL_ENV first', { env_exe, 'serve' }, server.resolve_cmd(nil))
vim.env.VIRTUAL_ENV, vim.env.PATH = nil, '/nonexistent'
vim.fn.delete(dot_venv)
check('nothing found: the Python package', { 'python3', '-m', 'dcopilot.copilot', 'serve' }, server.resolve_cmd(nil))
vim.fn.delete(tmp, 'rf')

-- acceptedLength counts like a position's character in the negotiated encoding (docs/lsp.md)
local protocol = require('dcopilot.protocol')
local item = { command = { arguments = { { id = 's1' } } } }
for _, c in ipairs({ { 'utf-8', 10 }, { 'utf-16', 8 }, { 'utf-32', 7 } }) do
  local params = protocol.accept_params(item, "ji = '😀", c[1])
  check('accept_params ' .. c[1], { id = 's1', acceptedLength = c[2] }, params)
end

if #failures > 0 then
  io.stderr:write(table.concat(failures, '\n') .. '\n')
  os.exit(1)
end
io.stdout:write('ok\n')
