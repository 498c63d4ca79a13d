-- StoryTeller for Neovim: starts `storyteller-lsp` for Markdown and text buffers, shows its
-- continuations as ghost text, and adds provider commands and a statusline component.
--
--   require("storyteller").setup({
--     cmd = { "storyteller-lsp" },            -- or a full path
--     filetypes = { "markdown", "text" },
--     settings = { inline = { debounceMs = 120 } },   -- the `storyteller` settings (DESIGN.md §3)
--     keymaps = { accept = "<M-l>", dismiss = "<C-]>", trigger = "<M-\\>", actions = "<M-a>" },
--   })
--
-- Code actions (Continue scene, Rewrite selection, ...) come through `vim.lsp.buf.code_action()`;
-- `keymaps.actions` opens them from insert mode, where "at the cursor" is after the last word typed
-- (in normal mode the cursor stands on a character, and the position is before it).
local compat = require("storyteller.compat")
local ghost = require("storyteller.ghost")
local providers = require("storyteller.providers")

local M = {}

M.defaults = {
  cmd = { "storyteller-lsp" },
  cmd_env = nil,
  filetypes = { "markdown", "text" },
  -- The `storyteller` settings sent as initializationOptions and on workspace/configuration.
  settings = {},
  -- Neovim 0.12+: use the built-in `vim.lsp.inline_completion` instead of this plugin's ghost text.
  use_builtin_inline = true,
  keymaps = { accept = "<M-l>", dismiss = "<C-]>", trigger = "<M-\\>", actions = "<M-a>" },
  root_markers = { ".storyteller", "STORY.md", ".git" },
}

M.config = vim.deepcopy(M.defaults)
M.status = nil

-- LSP language ids for Neovim filetypes: Neovim calls plain text "text", LSP "plaintext".
local LANGUAGE_IDS = { text = "plaintext" }

local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.textDocument = caps.textDocument or {}
  caps.textDocument.inlineCompletion = caps.textDocument.inlineCompletion or { dynamicRegistration = false }
  caps.experimental = vim.tbl_extend("force", caps.experimental or {}, {
    storyteller = { openSettings = true, statusNotification = true },
  })
  return caps
end

local function root_dir(bufnr)
  local path = vim.api.nvim_buf_get_name(bufnr)
  local start = path ~= "" and vim.fs and vim.fs.dirname(path) or vim.loop.cwd()
  if vim.fs and vim.fs.find then
    local found = vim.fs.find(M.config.root_markers, { path = start, upward = true })[1]
    if found then
      return vim.fs.dirname(found)
    end
  end
  return start
end

M.handlers = {
  ["storyteller/status"] = function(_, report)
    M.status = report
    vim.schedule(function()
      vim.cmd("redrawstatus")
    end)
  end,
  ["storyteller/openSettings"] = function()
    vim.schedule(function()
      vim.notify("Manage AI providers with :StorytellerProviders, :StorytellerAddProvider, :StorytellerRemoveProvider, :StorytellerSetPrimary", vim.log.levels.INFO, { title = "StoryTeller" })
    end)
  end,
}

local function on_attach(client, bufnr)
  if compat.builtin_inline and M.config.use_builtin_inline then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
    if M.config.keymaps.accept then
      vim.keymap.set("i", M.config.keymaps.accept, function()
        vim.lsp.inline_completion.get()
      end, { buffer = bufnr, desc = "StoryTeller: accept the suggestion" })
    end
  else
    ghost.attach(bufnr, { keymaps = M.config.keymaps })
    if M.config.keymaps.trigger then
      vim.keymap.set("i", M.config.keymaps.trigger, function()
        ghost.trigger(bufnr)
      end, { buffer = bufnr, desc = "StoryTeller: suggest a continuation" })
    end
  end
  if M.config.keymaps.actions then
    vim.keymap.set("i", M.config.keymaps.actions, function()
      vim.lsp.buf.code_action()
    end, { buffer = bufnr, desc = "StoryTeller: writing actions at the cursor" })
  end
  if M.config.on_attach then
    M.config.on_attach(client, bufnr)
  end
end

--- The client configuration, also usable with nvim-lspconfig or `vim.lsp.config`.
function M.client_config(bufnr)
  return {
    name = "storyteller",
    cmd = M.config.cmd,
    cmd_env = M.config.cmd_env,
    root_dir = root_dir(bufnr or 0),
    capabilities = capabilities(),
    init_options = { storyteller = M.config.settings },
    settings = { storyteller = M.config.settings },
    handlers = M.handlers,
    on_attach = on_attach,
    get_language_id = function(_, filetype)
      return LANGUAGE_IDS[filetype] or filetype
    end,
  }
end

local client_id

--- Starts (or reuses) the server for `bufnr`.
function M.start(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local config = M.client_config(bufnr)
  if vim.lsp.start then
    return vim.lsp.start(config, { bufnr = bufnr })
  end
  -- Neovim 0.7: one client for every buffer.
  if not client_id or not vim.lsp.get_client_by_id(client_id) then
    client_id = vim.lsp.start_client(config)
  end
  if client_id then
    vim.lsp.buf_attach_client(bufnr, client_id)
  end
  return client_id
end

--- For statuslines: `%{v:lua.require'storyteller'.statusline()}`.
function M.statusline()
  return providers.status_text(M.status)
end

local function parse_args(fargs)
  local out = {}
  for _, arg in ipairs(fargs or {}) do
    local key, value = arg:match("^(%w+)=(.*)$")
    if key then
      out[key] = value
    elseif arg == "primary" then
      out.primary = true
    else
      out.kind = arg
    end
  end
  return out
end

local function commands()
  local cmd = vim.api.nvim_create_user_command
  cmd("StorytellerProviders", function()
    providers.list()
  end, { desc = "List the configured AI providers" })
  cmd("StorytellerAddProvider", function(opts)
    providers.add(parse_args(opts.fargs))
  end, {
    nargs = "*",
    desc = "Add an AI provider: [kind] [model=...] [endpoint=...] [primary]",
    complete = function()
      return { "openai", "claude", "gemini", "deepseek", "yandex", "scaleway", "custom" }
    end,
  })
  cmd("StorytellerRemoveProvider", function()
    providers.remove()
  end, { desc = "Remove an AI provider and its stored key" })
  cmd("StorytellerSetPrimary", function()
    providers.set_primary()
  end, { desc = "Choose the primary AI provider" })
  cmd("StorytellerStatus", function()
    providers.status()
  end, { desc = "Show the StoryTeller status" })
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  ghost.highlight()
  commands()
  local group = vim.api.nvim_create_augroup("storyteller", { clear = true })
  vim.api.nvim_create_autocmd("FileType", {
    group = group,
    pattern = M.config.filetypes,
    callback = function(args)
      M.start(args.buf)
    end,
  })
  -- Buffers already open when setup runs.
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(M.config.filetypes, vim.bo[bufnr].filetype) then
      M.start(bufnr)
    end
  end
end

return M
