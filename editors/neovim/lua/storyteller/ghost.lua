-- Ghost text from `textDocument/inlineCompletion` (LSP 3.18) for Neovim versions without the
-- built-in `vim.lsp.inline_completion` (before 0.12). The suggestion is drawn with extmarks: inline
-- virtual text at the cursor on 0.10+, at the end of the line on older versions, further lines as
-- virtual lines. Accepting inserts the text and runs the item's command (`storyteller.feedback`).
-- A request the author makes (the trigger key) gets up to three alternatives; the next/previous
-- keys cycle through them (the one drawn is the one accepted).
--
-- It never waits on the server while the author types: requests are asynchronous, a newer keystroke
-- cancels the older request, and an answer that arrives after the text or cursor moved is dropped.
local compat = require("storyteller.compat")

local M = {}

M.namespace = vim.api.nvim_create_namespace("storyteller_ghost")

local TRIGGER_INVOKED = 1
local TRIGGER_AUTOMATIC = 2

-- Per buffer: { request = {client_id, id}, shown = {extmark, item, row, col, client_id} }
local state = {}

local function buf_state(bufnr)
  state[bufnr] = state[bufnr] or {}
  return state[bufnr]
end

local function item_text(item)
  if type(item.insertText) == "table" then
    return item.insertText.value or ""
  end
  return item.insertText or ""
end

local function split_lines(text)
  return vim.split(text, "\n", { plain = true })
end

--- The visible suggestion of `bufnr`, or nil.
function M.current(bufnr)
  local s = state[bufnr]
  return s and s.shown or nil
end

function M.dismiss(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local s = state[bufnr]
  if not s then
    return
  end
  if s.request then
    local client = compat.get_client(s.request.client_id)
    if client then
      compat.cancel_request(client, s.request.id)
    end
    s.request = nil
  end
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, M.namespace, 0, -1)
  end
  s.shown = nil
end

--- Draws item `index` (default 1) of an inline completion result at the cursor of the current
--- window. `result` is an InlineCompletionList or an array of InlineCompletionItem; positions are
--- in `encoding` (the client's offset encoding). Returns true when something is shown.
function M.show(bufnr, client_id, result, encoding, index)
  local items = result and (result.items or result) or {}
  index = index or 1
  local item = items[index]
  M.dismiss(bufnr)
  if not item then
    return false
  end
  local cursor = vim.api.nvim_win_get_cursor(0)
  local row, col = cursor[1] - 1, cursor[2]
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""

  -- The item replaces range.start..cursor; what the author already typed there is not drawn.
  local start_col = col
  if item.range and item.range.start.line == row then
    start_col = compat.byte_col(bufnr, item.range.start, encoding or "utf-16")
  end
  local text = item_text(item)
  local typed = line:sub(start_col + 1, col)
  if text:sub(1, #typed) ~= typed then
    return false -- the suggestion no longer fits what is in the buffer
  end
  local lines = split_lines(text:sub(#typed + 1))
  if #lines == 1 and lines[1] == "" then
    return false
  end

  local virt_lines = {}
  for i = 2, #lines do
    table.insert(virt_lines, { { lines[i], "StorytellerGhost" } })
  end
  local opts = {
    virt_text = { { lines[1], "StorytellerGhost" } },
    virt_text_pos = compat.has_inline_virt_text and "inline" or "eol",
    hl_mode = "combine",
  }
  if #virt_lines > 0 then
    opts.virt_lines = virt_lines
  end
  local extmark = vim.api.nvim_buf_set_extmark(bufnr, M.namespace, row, col, opts)
  buf_state(bufnr).shown = {
    extmark = extmark,
    item = item,
    items = items,
    index = index,
    encoding = encoding,
    row = row,
    start_col = start_col,
    col = col,
    client_id = client_id,
    tick = vim.api.nvim_buf_get_changedtick(bufnr),
  }
  return true
end

--- Asks the attached storyteller client for a suggestion at the cursor.
function M.request(bufnr, trigger)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local client = compat.clients_of(bufnr, "storyteller")[1]
  if not client then
    return
  end
  M.dismiss(bufnr)
  local params = compat.position_params(client)
  params.context = { triggerKind = trigger or TRIGGER_AUTOMATIC }
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local cursor = vim.api.nvim_win_get_cursor(0)
  local request_id
  local ok, id = compat.request(client, "textDocument/inlineCompletion", params, function(err, result)
    local s = buf_state(bufnr)
    if s.request and s.request.id == request_id then
      s.request = nil
    end
    if err or not result or not vim.api.nvim_buf_is_valid(bufnr) then
      return
    end
    -- Drop an answer to an older state of the text or cursor.
    if vim.api.nvim_buf_get_changedtick(bufnr) ~= tick or vim.api.nvim_get_current_buf() ~= bufnr then
      return
    end
    local now = vim.api.nvim_win_get_cursor(0)
    if now[1] ~= cursor[1] or now[2] ~= cursor[2] then
      return
    end
    M.show(bufnr, client.id, result, client.offset_encoding)
  end, bufnr)
  if ok and id then
    request_id = id
    buf_state(bufnr).request = { client_id = client.id, id = id }
  end
end

--- Shows the next (`step` 1) or previous (`step` -1) alternative in place of the visible one;
--- returns false when there is no other to show.
function M.cycle(bufnr, step)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local shown = M.current(bufnr)
  if not shown or #shown.items < 2 then
    return false
  end
  local count = #shown.items
  local index = (shown.index - 1 + (step or 1)) % count + 1
  return M.show(bufnr, shown.client_id, shown.items, shown.encoding, index)
end

--- Inserts the visible suggestion; returns false when there is none.
function M.accept(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local shown = M.current(bufnr)
  if not shown then
    return false
  end
  M.dismiss(bufnr)
  local lines = split_lines(item_text(shown.item))
  vim.api.nvim_buf_set_text(bufnr, shown.row, shown.start_col, shown.row, shown.col, lines)
  local last_row = shown.row + #lines - 1
  local last_col = (#lines == 1 and shown.start_col or 0) + #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { last_row + 1, last_col })
  local command = shown.item.command
  local client = shown.client_id and compat.get_client(shown.client_id)
  if command and client then
    compat.request(client, "workspace/executeCommand", {
      command = command.command,
      arguments = command.arguments,
    }, function() end, bufnr)
  end
  return true
end

--- Requests a suggestion on demand (Invoked trigger), e.g. from a keymap.
function M.trigger(bufnr)
  M.request(bufnr, TRIGGER_INVOKED)
end

--- Wires ghost text into a buffer: requests while typing in insert mode, clears on leave.
function M.attach(bufnr, opts)
  local group = vim.api.nvim_create_augroup("storyteller_ghost_" .. bufnr, { clear = true })
  vim.api.nvim_create_autocmd("TextChangedI", {
    group = group,
    buffer = bufnr,
    callback = function()
      M.request(bufnr, TRIGGER_AUTOMATIC)
    end,
  })
  vim.api.nvim_create_autocmd("CursorMovedI", {
    group = group,
    buffer = bufnr,
    callback = function()
      local shown = M.current(bufnr)
      if not shown then
        return
      end
      local cursor = vim.api.nvim_win_get_cursor(0)
      if cursor[1] - 1 ~= shown.row or cursor[2] ~= shown.col then
        M.dismiss(bufnr)
      end
    end,
  })
  vim.api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.dismiss(bufnr)
    end,
  })
  if opts.keymaps and opts.keymaps.accept then
    vim.keymap.set("i", opts.keymaps.accept, function()
      if not M.accept(bufnr) then
        M.trigger(bufnr)
      end
    end, { buffer = bufnr, desc = "StoryTeller: accept the suggestion" })
  end
  for key, step in pairs({ next = 1, prev = -1 }) do
    if opts.keymaps and opts.keymaps[key] then
      vim.keymap.set("i", opts.keymaps[key], function()
        if not M.cycle(bufnr, step) and not M.current(bufnr) then
          M.trigger(bufnr) -- nothing shown yet: ask, which brings the alternatives
        end
      end, { buffer = bufnr, desc = "StoryTeller: " .. key .. " alternative" })
    end
  end
  if opts.keymaps and opts.keymaps.dismiss then
    vim.keymap.set("i", opts.keymaps.dismiss, function()
      M.dismiss(bufnr)
    end, { buffer = bufnr, desc = "StoryTeller: dismiss the suggestion" })
  end
end

function M.highlight()
  if not pcall(vim.api.nvim_set_hl, 0, "StorytellerGhost", { link = "Comment", default = true }) then
    vim.cmd("highlight default link StorytellerGhost Comment")
  end
end

return M
