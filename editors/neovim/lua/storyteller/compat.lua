-- The few client calls whose form changed between Neovim 0.7 and 0.11+ (method calls on the
-- client object, `vim.lsp.start`). Everything version-dependent lives here.
local M = {}

M.has_011 = vim.fn.has("nvim-0.11") == 1
M.has_inline_virt_text = vim.fn.has("nvim-0.10") == 1
-- Neovim 0.12 ships `vim.lsp.inline_completion`; older versions use this plugin's ghost text.
M.builtin_inline = type(vim.lsp.inline_completion) == "table" and vim.lsp.inline_completion.enable ~= nil

function M.request(client, method, params, handler, bufnr)
  if M.has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.cancel_request(client, id)
  if M.has_011 then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

function M.notify(client, method, params)
  if M.has_011 then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

function M.get_client(id)
  return vim.lsp.get_client_by_id(id)
end

function M.clients_of(bufnr, name)
  local found = {}
  local list = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = bufnr }) or vim.lsp.buf_get_clients(bufnr)
  for _, client in pairs(list) do
    if client.name == name then
      table.insert(found, client)
    end
  end
  return found
end

--- Byte column of an LSP position in a buffer line, in the client's position encoding.
function M.byte_col(bufnr, position, encoding)
  local ok, col = pcall(vim.lsp.util._get_line_byte_from_position, bufnr, position, encoding)
  if ok and col then
    return col
  end
  return position.character
end

function M.position_params(client)
  return vim.lsp.util.make_position_params(0, client.offset_encoding)
end

return M
