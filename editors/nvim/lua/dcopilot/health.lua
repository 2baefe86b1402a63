--- :checkhealth dcopilot
local M = {}

function M.check()
  local health = vim.health
  health.start('dcopilot')
  local v = vim.version()
  if vim.fn.has('nvim-0.11') == 1 then
    health.ok(('Neovim %d.%d.%d'):format(v.major, v.minor, v.patch))
  else
    health.error('Neovim 0.11 or newer is required')
  end
  local dcopilot = require('dcopilot')
  if not dcopilot.options then
    health.warn("setup() has not been called: add require('dcopilot').setup() to your config")
    return
  end
  health.info('ghost text: ' .. require('dcopilot.' .. dcopilot.renderer()).description)
  local cmd = require('dcopilot.server').resolve_cmd(dcopilot.options.cmd)
  if vim.fn.executable(cmd[1]) == 1 then
    health.ok('server command: ' .. table.concat(cmd, ' '))
  else
    health.error('server command not found: ' .. cmd[1], {
      'pip install dcopilot (into the environment on PATH), or set `cmd` in setup()',
    })
  end
  local client = require('dcopilot.server').client()
  if not client then
    health.info('server not running (it starts with the first matching buffer)')
    return
  end
  local s = dcopilot.status()
  local line = ('server running (client %d); %s: %s'):format(
    client.id,
    s.state,
    s.message ~= '' and s.message or s.state
  )
  if s.state == 'error' then
    health.error(line)
  elseif s.state == 'ready' or s.state == 'busy' then
    health.ok(line)
  else
    health.info(line)
  end
  if not client.server_capabilities.inlineCompletionProvider then
    health.error('the server does not advertise inlineCompletionProvider')
  end
end

return M
