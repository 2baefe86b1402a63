--- Method names and message shapes of the dcopilot server (lsp/protocol.py, lsp/settings.py), in one
--- place so the rest of the plugin never spells a wire name.
local M = {}

M.inline_completion = 'textDocument/inlineCompletion'
M.inline_edit = 'dcopilot/inlineEdit'
M.did_show = 'dcopilot/didShowCompletion'
M.did_accept = 'dcopilot/didAcceptCompletion'
M.did_reject = 'dcopilot/didRejectCompletion'
M.stats = 'dcopilot/stats'
M.status = 'dcopilot/status'
M.cmd_accepted = 'dcopilot.acceptedCompletion' -- each item's `command`, run after a full accept
M.cmd_rewrite_instruction = 'dcopilot.rewriteWithInstruction' -- code action that wants an instruction

M.trigger_invoked = 1
M.trigger_automatic = 2

--- The suggestion id the server put in the item's command arguments (nil for foreign items).
---@param item table  an LSP InlineCompletionItem
---@return string?
function M.id(item)
  local command = item and item.command
  local arg = command and command.arguments and command.arguments[1]
  return type(arg) == 'table' and arg.id or nil
end

---@param item table
function M.show_params(item)
  return { id = M.id(item) }
end

---@param item table
function M.reject_params(item)
  return { id = M.id(item) }
end

--- A partial accept: how much of insertText was taken, in the position encoding's code units.
---@param item table
---@param taken string  the accepted part of insertText
---@param encoding string
function M.accept_params(item, taken, encoding)
  local ok, n = pcall(vim.str_utfindex, taken, encoding)
  return { id = M.id(item), acceptedLength = ok and n or #taken }
end

--- Live server settings (camelCase keys of lsp/settings.py: maxTokens, multiline, debounceMs, ...),
--- sent as initializationOptions and in workspace/didChangeConfiguration under "dcopilot".
---@param settings table
function M.settings(settings)
  return { dcopilot = settings }
end

return M
