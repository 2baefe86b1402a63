-- The plugin on Neovim >= 0.12, where core's vim.lsp.inline_completion draws the ghost text, against the real
-- `dcopilot serve` with the deterministic backend (editors_backend.py): the suggestion shows while typing, is
-- accepted whole, by word and by line (the plugin's additions to core), hides on leaving insert mode and on
-- dismiss, and :Dcopilot rewrite applies the server's edit.
local T = dofile(os.getenv('DCOPILOT_TEST_DRIVER'))
local dir = os.getenv('DCOPILOT_TEST_DIR')
local cmd = vim.json.decode(os.getenv('DCOPILOT_TEST_CMD'))

local function ghost(what, expected)
  return T.wait(what, function()
    local shown = T.native_ghost()
    return (expected == nil or shown == expected) and shown
  end)
end

T.run(function()
  local dcopilot = require('dcopilot')
  dcopilot.setup({ cmd = cmd, filetypes = { 'python' }, debounce_ms = 10 }) -- native = 'auto' (the default)
  T.eq('native', dcopilot.renderer(), 'renderer')
  vim.cmd.edit(dir .. '/native.py')
  vim.bo.autoindent = false
  vim.bo.indentexpr = ''
  T.wait('server ready', function()
    return dcopilot.status().state == 'ready'
  end, 60000)

  -- Whole accept.
  T.type('iret')
  ghost('core shows the suggestion after "ret"', 'urn a + b')
  T.type('<Tab>')
  T.wait('accepted text', function()
    return T.lines()[1] == 'return a + b'
  end)

  -- Leaving insert mode hides it; dismiss hides it too.
  T.type('<CR>foo(')
  ghost('suggestion after "foo("', 'a, b)')
  T.type('<Esc>')
  T.wait('ghost text gone in normal mode', function()
    return T.native_ghost() == nil
  end)
  T.type('a')
  ghost('suggestion back in insert mode', 'a, b)')
  T.type('<C-]>')
  T.wait('dismissed', function()
    return T.native_ghost() == nil
  end)
  T.type('<Esc>')
  T.eq('foo(', T.lines()[2], 'dismiss leaves the buffer alone')

  -- Accept a word, then the rest of the line.
  T.type('ohel')
  ghost('multi-line suggestion', 'lo(name):\n    print(name)')
  T.type('<M-Right>')
  T.wait('word accepted', function()
    return T.lines()[3] == 'hello'
  end)
  -- Core drops its item on any accept; the rest comes back with its next request (the server remembers it).
  ghost('the rest after a word', '(name):\n    print(name)')
  T.type('<M-C-Right>')
  T.wait('line accepted', function()
    return T.lines()[3] == 'hello(name):'
  end)
  ghost('the next line after a line', '\n    print(name)')
  T.type('<M-C-Right>')
  T.wait('second line accepted', function()
    return T.lines()[4] == '    print(name)'
  end)
  T.type('<Esc>')

  -- With nothing shown the keys keep their own meaning, and Neovim keeps going (returning <M-C-Right> with
  -- its key codes replaced twice once left it waiting for the rest of a key).
  T.type('o<Esc>')
  local last = #T.lines()
  T.type('A<M-C-Right><M-Right><Tab>x<Esc>')
  T.wait('a literal tab', function()
    return T.lines()[last]:find('^%s+x$')
  end)

  -- Rewrite a selection: `foo` -> `bar` on line 2.
  local result
  dcopilot.rewrite({ line1 = 2, line2 = 2 }, nil, function(err, applied)
    result = { err = err or false, applied = applied }
  end)
  T.wait('rewrite answered', function()
    return result
  end)
  T.eq({ err = false, applied = true }, result, 'rewrite result')
  T.eq('bar(', T.lines()[2], 'rewritten line')
end, 90000)
