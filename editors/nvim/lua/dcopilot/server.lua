--- Starting `dcopilot serve` through vim.lsp and talking to it: one client for the whole editor (the
--- model is loaded once), the latest `dcopilot/status`, and the custom notifications.
local protocol = require('dcopilot.protocol')

local M = {}

M.name = 'dcopilot'

---@type {state: string, message: string, progress: number?}
M.status = { state = 'stopped', message = '' }

--- The command that starts the server: `cmd` from setup, else `dcopilot` from the Python environment the
--- user works in ($VIRTUAL_ENV, then the working directory's .venv or venv), else from PATH, else the
--- Python package (`python3 -m dcopilot.copilot serve`). The VS Code extension looks in the same order.
---@param cmd string[]?
---@return string[]
function M.resolve_cmd(cmd)
  if cmd then
    return cmd
  end
  local windows = vim.fn.has('win32') == 1
  local function in_venv(venv)
    return vim.fs.joinpath(venv, windows and 'Scripts' or 'bin', windows and 'dcopilot.exe' or 'dcopilot')
  end
  local candidates = {}
  if vim.env.VIRTUAL_ENV then
    candidates[#candidates + 1] = in_venv(vim.env.VIRTUAL_ENV)
  end
  for _, venv in ipairs({ '.venv', 'venv' }) do
    candidates[#candidates + 1] = in_venv(vim.fs.joinpath(vim.fn.getcwd(), venv))
  end
  candidates[#candidates + 1] = 'dcopilot' -- PATH
  for _, exe in ipairs(candidates) do
    if vim.fn.executable(exe) == 1 then
      return { exe, 'serve' }
    end
  end
  return { 'python3', '-m', 'dcopilot.copilot', 'serve' }
end

local function on_status(_, params)
  if type(params) ~= 'table' then
    return
  end
  local previous = M.status
  M.status = { state = params.state or 'unknown', message = params.message or '', progress = params.progress }
  if M.status.state == 'error' and previous.message ~= M.status.message then
    vim.notify('dcopilot: ' .. M.status.message, vim.log.levels.ERROR)
  end
  vim.api.nvim_exec_autocmds('User', { pattern = 'DcopilotStatus', modeline = false })
end

--- The running client, if any.
---@return vim.lsp.Client?
function M.client()
  return vim.lsp.get_clients({ name = M.name })[1]
end

---@param bufnr integer
---@return vim.lsp.Client?
function M.client_for(bufnr)
  return vim.lsp.get_clients({ name = M.name, bufnr = bufnr })[1]
end

--- Attach `bufnr` to the (single, shared) server, starting it on first use.
---@param bufnr integer
---@param opts dcopilot.Options
---@return integer? client_id
function M.attach(bufnr, opts)
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  -- Said even on 0.11, where the plugin draws the ghost text: the server then keeps its suggestions out
  -- of completion menus (completionItems = 'auto').
  capabilities.textDocument.inlineCompletion = { dynamicRegistration = false }
  return vim.lsp.start({
    name = M.name,
    cmd = M.resolve_cmd(opts.cmd),
    root_dir = vim.fn.getcwd(),
    capabilities = capabilities,
    init_options = protocol.settings(opts.settings),
    settings = protocol.settings(opts.settings),
    handlers = { [protocol.status] = on_status },
    commands = {
      [protocol.cmd_rewrite_instruction] = function(command, ctx)
        require('dcopilot.rewrite').code_action_command(command, ctx)
      end,
    },
    on_exit = function(code)
      M.status = { state = 'stopped', message = code ~= 0 and ('server exited with code ' .. code) or '' }
      vim.schedule(function()
        vim.api.nvim_exec_autocmds('User', { pattern = 'DcopilotStatus', modeline = false })
      end)
    end,
  }, {
    bufnr = bufnr,
    -- One server per editor, whatever the root: it holds the model.
    reuse_client = function(client, config)
      return client.name == config.name
    end,
  })
end

--- Send a notification to the server attached to `bufnr`; silently nothing when none is.
---@param bufnr integer
---@param method string
---@param params table
function M.notify(bufnr, method, params)
  local client = M.client_for(bufnr)
  if client then
    client:notify(method, params)
  end
end

--- Restart the server: stop every client, then re-attach the buffers it served.
---@param opts dcopilot.Options
function M.restart(opts)
  local client = M.client()
  if not client then
    return
  end
  local buffers = vim.tbl_keys(client.attached_buffers)
  client:stop(true)
  vim.wait(3000, function()
    return client:is_stopped()
  end, 20)
  for _, bufnr in ipairs(buffers) do
    if vim.api.nvim_buf_is_valid(bufnr) then
      M.attach(bufnr, opts)
    end
  end
end

return M
