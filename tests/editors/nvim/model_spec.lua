-- The plugin against `dcopilot serve` with the real embedded model: a suggestion appears while typing,
-- accepting it puts exactly its text in the buffer; a rewrite of a selection puts exactly the server's
-- edits in the buffer (checked by applying the same edits to a scratch copy).
local T = dofile(os.getenv('DCOPILOT_TEST_DRIVER'))
local dir = os.getenv('DCOPILOT_TEST_DIR')
local cmd = vim.json.decode(os.getenv('DCOPILOT_TEST_CMD'))

local function text()
  return table.concat(T.lines(), '\n')
end

T.run(function()
  local dcopilot = require('dcopilot')
  dcopilot.setup({ cmd = cmd, filetypes = { 'python' }, debounce_ms = 20, native = false })
  vim.cmd.edit(dir .. '/model_demo.py')
  vim.bo.autoindent = false
  vim.api.nvim_buf_set_lines(0, 0, -1, true, {
    'def add(a, b):',
    '    return a + b',
    '',
    '',
    'def is_even(n):',
    '    ',
  })
  T.wait('model ready', function()
    local s = dcopilot.status()
    if s.state == 'error' then
      error('model failed to load: ' .. s.message)
    end
    return s.state == 'ready'
  end, 240000)
  T.note('status', dcopilot.status())

  -- Type at the end of the function body until the model offers something (bounded tries).
  local suggestion, before, offset
  for _, keys in ipairs({ 'return', ' n', ' %', ' 2' }) do
    if suggestion then
      break
    end
    vim.api.nvim_win_set_cursor(0, { 6, #vim.api.nvim_buf_get_lines(0, 5, 6, true)[1] })
    T.type((vim.api.nvim_get_mode().mode == 'i' and '' or 'A') .. keys)
    pcall(T.wait, 'a suggestion', function() return dcopilot.current() end, 30000)
    suggestion = dcopilot.current()
  end
  if not suggestion then
    error('the model offered no suggestion after four tries')
  end
  T.note('suggestion', suggestion)
  before = text()
  local row, col = unpack(vim.api.nvim_win_get_cursor(0))
  offset = #table.concat(vim.api.nvim_buf_get_lines(0, 0, row - 1, true), '\n') + (row > 1 and 1 or 0) + col
  T.type('<Tab>')
  T.wait('accepted', function() return text() ~= before end)
  local after = text()
  local pre, post = before:sub(1, offset), before:sub(offset + 1)
  local line_rest = post:match('^[^\n]*')
  -- Either inserted at the cursor, or (auto-closed text right of the cursor) replacing the line's rest.
  if after ~= pre .. suggestion .. post and after ~= pre .. suggestion .. post:sub(#line_rest + 1) then
    error(('buffer after accept:\n%s\nexpected the suggestion %q inserted into:\n%s'):format(after, suggestion, before))
  end
  T.type('<Esc>')

  -- Rewrite lines 1-2; whatever the model proposes must be exactly what lands in the buffer.
  local original = T.lines()
  local result
  dcopilot.rewrite({ line1 = 1, line2 = 2 }, nil, function(err, applied, res)
    result = { err = err or false, applied = applied, res = res }
  end)
  T.wait('rewrite answered', function() return result end, 120000)
  T.note('rewrite', { err = result.err, applied = result.applied })
  if result.applied then
    local scratch = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_lines(scratch, 0, -1, true, original)
    vim.lsp.util.apply_text_edits(result.res.edits, scratch, require('dcopilot.server').client().offset_encoding)
    T.eq(vim.api.nvim_buf_get_lines(scratch, 0, -1, true), T.lines(), 'buffer after the rewrite')
    T.eq(vim.list_slice(original, 3), vim.list_slice(T.lines(), #T.lines() - #original + 3), 'lines after the selection')
  else
    -- No edit is an allowed answer (the model kept the code); an error is not.
    T.eq(original, T.lines(), 'buffer untouched when nothing was applied')
    if result.err and not tostring(result.err):find('no change') then
      error('rewrite failed: ' .. tostring(result.err))
    end
  end
end, 280000)
