-- :Dcopilot {subcommand}. Defines the command only; nothing starts until require('dcopilot').setup().
if vim.g.loaded_dcopilot then
  return
end
vim.g.loaded_dcopilot = true

--- The selection a range command was given: exact columns when it came from a charwise visual selection.
local function selection(args)
  local sel = { line1 = args.line1, line2 = args.line2 }
  if args.range == 2 and vim.fn.visualmode() == 'v' then
    local s, e = vim.fn.getpos("'<"), vim.fn.getpos("'>")
    if s[2] == args.line1 and e[2] == args.line2 then
      local last = vim.api.nvim_buf_get_lines(0, e[2] - 1, e[2], true)[1]
      local col2 = math.min(e[3], #last)
      sel.col1 = s[3] - 1
      sel.col2 = col2 > 0 and col2 + vim.str_utf_end(last, col2) or 0
    end
  end
  return sel
end

local subcommands = {
  rewrite = function(args, rest)
    require('dcopilot').rewrite(selection(args), rest)
  end,
  enable = function(_, rest)
    require('dcopilot').enable(true, rest == 'buffer' and 0 or nil)
  end,
  disable = function(_, rest)
    require('dcopilot').enable(false, rest == 'buffer' and 0 or nil)
  end,
  status = function()
    local s = require('dcopilot').status()
    vim.notify(require('dcopilot').statusline() .. (s.message ~= '' and (' (' .. s.message .. ')') or ''))
  end,
  stats = function()
    require('dcopilot').stats()
  end,
  restart = function()
    require('dcopilot').restart()
  end,
  log = function()
    vim.cmd.split(vim.lsp.log.get_filename())
  end,
}

vim.api.nvim_create_user_command('Dcopilot', function(args)
  local name, rest = args.args:match('^(%S+)%s*(.*)$')
  local fn = subcommands[name or '']
  if not fn then
    local names = vim.tbl_keys(subcommands)
    table.sort(names)
    vim.notify(
      'Dcopilot: unknown subcommand ' .. (name or "''") .. ' (one of: ' .. table.concat(names, ', ') .. ')',
      vim.log.levels.ERROR
    )
    return
  end
  fn(args, rest ~= '' and rest or nil)
end, {
  nargs = '+',
  range = true,
  desc = 'dcopilot: rewrite [instruction] | enable [buffer] | disable [buffer] | status | stats | restart | log',
  complete = function(lead, line)
    if line:match('^%S*%s+%S*$') then
      return vim.tbl_filter(function(n)
        return vim.startswith(n, lead)
      end, vim.tbl_keys(subcommands))
    end
    return {}
  end,
})
