-- Plugin mechanics against the real `dcopilot serve` with the deterministic backend (editors_backend.py):
-- ghost text appears, is accepted whole / by word / by line, dismissed, replaced on divergence, absorbs an
-- auto-closed bracket, and :Dcopilot rewrite applies an edit (and refuses one for a changed buffer).
local T = dofile(os.getenv('DCOPILOT_TEST_DRIVER'))
local dir = os.getenv('DCOPILOT_TEST_DIR')
local cmd = vim.json.decode(os.getenv('DCOPILOT_TEST_CMD'))

T.run(function()
  local dcopilot = require('dcopilot')
  dcopilot.setup({ cmd = cmd, filetypes = { 'python' }, debounce_ms = 10, native = false })
  T.eq('ghost', dcopilot.renderer(), 'renderer')
  vim.cmd.edit(dir .. '/demo.py')
  vim.bo.autoindent = false -- the expected lines below are written without indentation
  vim.bo.indentexpr = ''
  T.wait('server ready', function()
    return dcopilot.status().state == 'ready'
  end, 60000)

  -- Whole accept.
  T.type('iret')
  T.eq(
    'urn a + b',
    T.wait('suggestion after "ret"', function()
      return dcopilot.current()
    end),
    'suggestion'
  )
  T.type('<Tab>')
  T.wait('accepted text', function()
    return T.lines()[1] == 'return a + b'
  end)
  T.eq(nil, dcopilot.current(), 'nothing left after a whole accept')

  -- Typing through a suggestion keeps it, trimmed, without a new request.
  T.type('<CR>hel')
  T.eq(
    'lo(name):\n    print(name)',
    T.wait('multi-line suggestion', function()
      return dcopilot.current()
    end),
    'suggestion'
  )
  T.type('l')
  T.eq('o(name):\n    print(name)', dcopilot.current(), 'typed through one character')

  -- Accept a word, then line by line.
  T.type('<M-Right>')
  T.wait('word accepted', function()
    return T.lines()[2] == 'hello'
  end)
  T.eq('(name):\n    print(name)', dcopilot.current(), 'rest after a word')
  T.type('<M-C-Right>')
  T.wait('line accepted', function()
    return T.lines()[2] == 'hello(name):'
  end)
  T.eq('\n    print(name)', dcopilot.current(), 'rest after a line')
  T.type('<M-C-Right>')
  T.wait('second line accepted', function()
    return T.lines()[3] == '    print(name)'
  end)
  T.eq(nil, dcopilot.current(), 'nothing left after the last line')

  -- Divergent typing drops the suggestion; dismiss hides one and reports it.
  T.type('<Esc>oret')
  T.wait('suggestion on a new line', function()
    return dcopilot.current() == 'urn a + b'
  end)
  T.type('x')
  T.eq(nil, dcopilot.current() == 'urn a + b' and 'kept' or nil, 'divergent typing drops the suggestion')
  T.wait('new suggestion after divergence', function()
    return dcopilot.current() == '_value = 1'
  end)
  T.type('<C-]>')
  T.eq(nil, dcopilot.current(), 'dismissed')
  T.type('<Esc>')

  -- Cycling: with one candidate, <M-]> asks for several (an invoked request); then it steps through them.
  T.type('oret')
  T.wait('automatic suggestion', function()
    return dcopilot.current() == 'urn a + b'
  end)
  T.type('<M-]>')
  local ns = require('dcopilot.ghost').ns
  local function hint()
    local marks = vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })
    local chunks = marks[1] and marks[1][4].virt_text or {}
    return chunks[2] and chunks[2][1]
  end
  T.wait('three candidates', function()
    return hint() == ' (1/3)'
  end)
  T.type('<M-]>')
  T.eq({ 'urn a + b  # 2', ' (2/3)' }, { dcopilot.current(), hint() }, 'second candidate')
  T.type('<M-[><M-[>')
  T.eq({ 'urn a + b  # 3', ' (3/3)' }, { dcopilot.current(), hint() }, 'previous wraps around')
  T.type('<Esc>')
  vim.api.nvim_buf_set_lines(0, 4, 5, true, {})

  -- An auto-closed bracket right of the cursor is replaced, not doubled.
  T.type('ox = foo()<Left>')
  T.wait('suggestion inside parentheses', function()
    return dcopilot.current()
  end)
  T.type('<Tab>')
  T.wait('bracket absorbed', function()
    return T.lines()[5] == 'x = foo(a, b)'
  end)
  T.type('<Esc>')

  -- Disabled (per buffer, then globally): typing asks for nothing; enabled again, it does.
  for _, scope in ipairs({ 'buffer', '' }) do
    vim.cmd('Dcopilot disable ' .. scope)
    T.type('oret')
    T.sleep(400)
    T.eq(nil, dcopilot.current(), 'no suggestion while disabled (' .. scope .. ')')
    T.type('<Esc>')
    vim.cmd('Dcopilot enable ' .. scope)
  end
  T.type('oret')
  T.wait('suggestion once enabled again', function()
    return dcopilot.current() == 'urn a + b'
  end)
  T.type('<Esc>')
  vim.api.nvim_buf_set_lines(0, 5, -1, true, {})

  local stats = T.request('dcopilot/stats')
  T.note('stats', stats)
  -- Shown: ret, hel, ret, _value, ret + its 3 candidates, foo(, ret. Accepted in full: ret, the hel lines,
  -- foo(. Partly: the word and the first line. Rejected: the divergent ret, the dismissed _value, the third
  -- candidate left by <Esc>, the ret left by <Esc>. (The automatic ret replaced by candidates is not.)
  T.eq(
    { 10, 3, 2, 4 },
    { stats.shown, stats.accepted, stats.partiallyAccepted, stats.rejected },
    'shown, accepted, partly accepted, rejected as counted by the server'
  )

  -- Rewrite a range; then a rewrite whose buffer changes while the model works is refused.
  vim.api.nvim_buf_set_lines(0, 0, -1, true, { 'def foo():', '    return foo', 'tail' })
  vim.cmd('1,2Dcopilot rewrite')
  T.wait('rewrite applied', function()
    return T.lines()[1] == 'def bar():'
  end)
  T.eq({ 'def bar():', '    return bar', 'tail' }, T.lines(), 'rewritten lines')

  local result
  dcopilot.rewrite({ line1 = 3, line2 = 3 }, 'say why', function(err, applied)
    result = { err, applied }
  end)
  T.wait('rewrite with instruction', function()
    return result
  end)
  T.eq({ 'def bar():', '    return bar', 'tail  # say why' }, T.lines(), 'instruction rewrite')

  vim.api.nvim_buf_set_lines(0, 0, -1, true, { 'foo = 1  #SLOW', 'other' })
  result = nil
  dcopilot.rewrite({ line1 = 1, line2 = 1 }, nil, function(err, applied)
    result = { err or false, applied }
  end)
  T.sleep(300)
  vim.api.nvim_buf_set_lines(0, 1, 2, true, { 'changed meanwhile' })
  T.wait('stale rewrite answered', function()
    return result
  end, 10000)
  T.eq(false, result[2], 'stale rewrite not applied')
  T.eq({ 'foo = 1  #SLOW', 'changed meanwhile' }, T.lines(), 'buffer untouched by a stale edit')
  T.note('stale_error', result[1])

  -- A charwise visual selection rewrites exactly the selected text.
  vim.api.nvim_buf_set_lines(0, 0, -1, true, { 'x = foo + foo' })
  T.type('<Esc>0fvfv')
  T.type('0f+lvl$h<Esc>')
  vim.api.nvim_buf_set_lines(0, 0, -1, true, { 'x = foo + foo' })
  vim.fn.setpos("'<", { 0, 1, 11, 0 })
  vim.fn.setpos("'>", { 0, 1, 13, 0 })
  vim.cmd("'<,'>Dcopilot rewrite")
  T.wait('charwise rewrite', function()
    return T.lines()[1] ~= 'x = foo + foo'
  end)
  T.eq({ 'x = foo + bar' }, T.lines(), 'only the selection rewritten')

  -- The code actions: plain (resolved by the server), and the one whose instruction the plugin asks for.
  vim.api.nvim_buf_set_lines(0, 0, -1, true, { 'y = foo' })
  local function code_action(title)
    vim.lsp.buf.code_action({
      apply = true,
      range = { start = { 1, 0 }, ['end'] = { 1, 7 } },
      filter = function(action)
        return action.title == title
      end,
    })
  end
  code_action('Rewrite with dcopilot')
  T.wait('code action applied', function()
    return T.lines()[1] == 'y = bar'
  end)
  vim.api.nvim_buf_set_lines(0, 0, -1, true, { 'y = foo' })
  local asked
  vim.ui.input = function(opts, on_confirm)
    asked = opts.prompt
    on_confirm('why')
  end
  code_action('Rewrite with dcopilot (instruction)…')
  T.wait('instruction code action applied', function()
    return T.lines()[1] == 'y = foo  # why'
  end)
  T.eq('dcopilot instruction: ', asked, 'prompt')

  -- :checkhealth reports the running server and its state.
  vim.cmd('checkhealth dcopilot')
  local report = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, true), '\n')
  T.note('health', report)
  for _, expected in ipairs({ 'OK Neovim', 'OK server command', 'OK server running', 'model ready', 'own extmarks' }) do
    if not report:find(expected, 1, true) then
      error('checkhealth lacks ' .. expected .. ':\n' .. report)
    end
  end
  if report:find('ERROR', 1, true) then
    error('checkhealth reports an error:\n' .. report)
  end
end, 90000)
