--- `:Dcopilot rewrite [instruction]` on a range: ask the server for an in-line edit of the selection
--- (`dcopilot/inlineEdit`) and apply it, unless the buffer changed while the model was working.
local protocol = require('dcopilot.protocol')
local server = require('dcopilot.server')

local M = {}

--- The LSP document version Neovim last sent for `bufnr`.
---@param bufnr integer
---@return integer
local function lsp_version(bufnr)
  local versions = vim.lsp.util.buf_versions
  if versions then
    return versions[bufnr]
  end
  return vim.b[bufnr].changedtick
end

--- LSP range of lines [line1, line2] (1-based, inclusive) or of an exact charwise selection.
---@param bufnr integer
---@param sel {line1: integer, line2: integer, col1: integer?, col2: integer?}  cols: 0-based bytes, col2 exclusive
---@param encoding string
local function lsp_range(bufnr, sel, encoding)
  local first = vim.api.nvim_buf_get_lines(bufnr, sel.line1 - 1, sel.line1, true)[1]
  local last = vim.api.nvim_buf_get_lines(bufnr, sel.line2 - 1, sel.line2, true)[1]
  local col1 = sel.col1 or 0
  local col2 = math.min(sel.col2 or #last, #last)
  return {
    start = { line = sel.line1 - 1, character = vim.str_utfindex(first, encoding, col1, false) },
    ['end'] = { line = sel.line2 - 1, character = vim.str_utfindex(last, encoding, col2, false) },
  }
end

--- Ask the server for an edit of `range` (LSP) and apply it. `done(err, applied, result)` is called when
--- it finished (`result` is the server's answer); messages go to vim.notify as well.
---@param bufnr integer
---@param range table  LSP range in the client's position encoding
---@param instruction string?
---@param done fun(err: string?, applied: boolean, result: table?)?
function M.request(bufnr, range, instruction, done)
  done = done or function() end
  local result ---@type table?
  local function finish(err, applied, level)
    if err then
      vim.notify('dcopilot rewrite: ' .. err, level or vim.log.levels.WARN)
    end
    done(err, applied, result)
  end
  local client = server.client_for(bufnr)
  if not client then
    return finish('no dcopilot server is attached to this buffer', false, vim.log.levels.ERROR)
  end
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr), version = lsp_version(bufnr) },
    range = range,
    instruction = instruction or '',
  }
  vim.notify('dcopilot: rewriting…', vim.log.levels.INFO)
  client:request(protocol.inline_edit, params, function(err, res)
    result = res
    if err then
      return finish(err.message or tostring(err), false, vim.log.levels.ERROR)
    end
    if not result or not vim.api.nvim_buf_is_valid(bufnr) then
      return finish('no result', false)
    end
    if #(result.edits or {}) == 0 then
      return finish((result.message or '') ~= '' and result.message or 'the model proposed no change', false)
    end
    local version = result.textDocument and result.textDocument.version
    if version ~= nil and version ~= lsp_version(bufnr) then
      return finish('the buffer changed while the model was working; nothing applied', false)
    end
    vim.lsp.util.apply_text_edits(result.edits, bufnr, client.offset_encoding)
    finish(nil, true)
  end, bufnr)
end

--- Rewrite lines [line1, line2] of `bufnr`, or an exact charwise selection (cols: 0-based bytes).
---@param bufnr integer
---@param sel {line1: integer, line2: integer, col1: integer?, col2: integer?}
---@param instruction string?
---@param done fun(err: string?, applied: boolean, result: table?)?
function M.run(bufnr, sel, instruction, done)
  bufnr = bufnr == 0 and vim.api.nvim_get_current_buf() or bufnr
  local client = server.client_for(bufnr)
  local encoding = client and client.offset_encoding or 'utf-16'
  M.request(bufnr, lsp_range(bufnr, sel, encoding), instruction, done)
end

--- Client side of the "Rewrite with dcopilot (instruction)…" code action: ask for the instruction,
--- then the same request as :Dcopilot rewrite.
---@param command lsp.Command
---@param ctx table
function M.code_action_command(command, ctx)
  local args = command.arguments and command.arguments[1]
  if type(args) ~= 'table' or not args.range then
    return
  end
  vim.ui.input({ prompt = 'dcopilot instruction: ' }, function(instruction)
    if instruction and instruction ~= '' then
      M.request(ctx.bufnr, args.range, instruction)
    end
  end)
end

return M
