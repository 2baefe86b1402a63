-- Drives a headless Neovim like a person at the keyboard: keys go through nvim_input (so mappings,
-- insert mode and autocmds behave as when typing), and a coroutine waits between steps while the
-- event loop runs. The outcome is written as JSON to $DCOPILOT_TEST_OUT, then Neovim quits.
local T = { log = {} }

local co
local function resume()
  local ok, err = coroutine.resume(co)
  if not ok then
    error(err)
  end
end

function T.sleep(ms)
  vim.defer_fn(resume, ms)
  coroutine.yield()
end

--- Wait until `cond()` is truthy; fail the test after `timeout_ms` naming `what`.
function T.wait(what, cond, timeout_ms)
  local start = vim.uv.now()
  while true do
    local ok, value = pcall(cond)
    if ok and value then
      return value
    end
    if vim.uv.now() - start > (timeout_ms or 10000) then
      error(('timed out after %d ms waiting for %s'):format(timeout_ms or 10000, what), 2)
    end
    T.sleep(20)
  end
end

--- Type keys (Neovim key notation) and let the editor process them.
function T.type(keys)
  vim.api.nvim_input(keys)
  T.sleep(30)
end

function T.eq(expected, actual, what)
  if not vim.deep_equal(expected, actual) then
    error(('%s: expected %s, got %s'):format(what, vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

function T.note(key, value)
  T.log[key] = value
end

function T.lines()
  return vim.api.nvim_buf_get_lines(0, 0, -1, true)
end

--- The ghost text Neovim >= 0.12 core (vim.lsp.inline_completion) draws in the current buffer, its lines
--- joined with '\n'; nil when none is shown.
function T.native_ghost()
  local ns = vim.api.nvim_get_namespaces()['nvim.lsp.inline_completion']
  local marks = ns and vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true }) or {}
  if #marks == 0 then
    return nil
  end
  local function join(chunks)
    return table.concat(vim.tbl_map(function(chunk)
      return chunk[1]
    end, chunks or {}))
  end
  local lines = { join(marks[1][4].virt_text) }
  for _, virt_line in ipairs(marks[1][4].virt_lines or {}) do
    lines[#lines + 1] = join(virt_line)
  end
  return table.concat(lines, '\n')
end

--- Send a request to the dcopilot server and wait for its answer.
function T.request(method, params)
  local client = assert(require('dcopilot.server').client(), 'no dcopilot client')
  local done, result, err = false, nil, nil
  client:request(method, params or {}, function(e, r)
    err, result, done = e, r, true
  end)
  T.wait(method, function()
    return done
  end)
  if err then
    error(method .. ': ' .. vim.inspect(err), 2)
  end
  return result
end

local function finish(ok, err)
  if not ok then
    pcall(function()
      T.log.buffer = T.lines()
      T.log.mode = vim.api.nvim_get_mode().mode
      T.log.messages = vim.api.nvim_exec2('messages', { output = true }).output
    end)
  end
  local out = os.getenv('DCOPILOT_TEST_OUT')
  local f = assert(io.open(out, 'w'))
  f:write(vim.json.encode({ ok = ok, error = err and tostring(err) or vim.NIL, log = T.log }))
  f:close()
  vim.cmd('qa!')
end

--- Run `fn` as the test body; `timeout_ms` bounds the whole test.
function T.run(fn, timeout_ms)
  co = coroutine.create(function()
    local ok, err = xpcall(fn, debug.traceback)
    finish(ok, err)
  end)
  vim.defer_fn(function()
    finish(false, ('test exceeded %d ms'):format(timeout_ms))
  end, timeout_ms)
  vim.schedule(resume)
end

return T
