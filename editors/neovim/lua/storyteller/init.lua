-- StoryTeller for Neovim: starts `storyteller-lsp` for Markdown and text buffers, shows its
-- continuations as ghost text, and adds provider commands and a statusline component.
--
--   require("storyteller").setup({
--     cmd = { "storyteller-lsp" },            -- or a full path
--     filetypes = { "markdown", "text" },
--     settings = { inline = { debounceMs = 120 } },   -- the `storyteller` settings (DESIGN.md §3)
--     keymaps = { accept = "<M-l>", dismiss = "<C-]>", trigger = "<M-\\>", actions = "<M-a>",
--                 next = "<M-]>", prev = "<M-[>" },
--   })
--
-- Code actions (Continue scene, Rewrite selection, ...) come through `vim.lsp.buf.code_action()`;
-- `keymaps.actions` opens them from insert mode, where "at the cursor" is after the last word typed
-- (in normal mode the cursor stands on a character, and the position is before it).
-- "Continue scene with…" asks what should happen next (`vim.ui.input`) and runs the action with
-- that direction; `:StorytellerRewrite {style}` on a visual selection rewrites it in a style brief.
-- The trigger key asks for a suggestion with alternatives; `keymaps.next` / `keymaps.prev` cycle.
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
  keymaps = {
    accept = "<M-l>",
    dismiss = "<C-]>",
    trigger = "<M-\\>",
    actions = "<M-a>",
    next = "<M-]>",
    prev = "<M-[>",
  },
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
    storyteller = { openSettings = true, statusNotification = true, askInstruction = true },
  })
  return caps
end

local CONTINUE_WITH = "storyteller.continueSceneWith"

local function trim(text)
  return (text or ""):gsub("^%s+", ""):gsub("%s+$", "")
end

--- Runs `storyteller.generate` with `args` on the client `client_id`; the server reports progress,
--- applies the edit and tells failures. `done(err, result)` is called with the answer.
function M.generate(client_id, args, bufnr, done)
  local client = compat.get_client(client_id)
  if not client then
    return false
  end
  compat.request(client, "workspace/executeCommand", {
    command = "storyteller.generate",
    arguments = { args },
  }, function(err, result)
    M.last_generate = { err = err, result = result }
    if err then
      vim.schedule(function()
        vim.notify("StoryTeller: " .. tostring(err.message or err), vim.log.levels.ERROR, { title = "StoryTeller" })
      end)
    end
    if done then
      done(err, result)
    end
  end, bufnr)
  return true
end

--- The `storyteller.generate` arguments for the author's answer to "What should happen next?":
--- the code action's arguments plus the trimmed instruction; nil when cancelled or empty.
function M.with_instruction(action_args, answer)
  if type(action_args) ~= "table" or answer == nil then
    return nil
  end
  local instruction = trim(answer)
  if instruction == "" then
    return nil
  end
  local args = vim.deepcopy(action_args)
  args.instruction = instruction
  return args
end

--- The client-side command of "Continue scene with…" (vim.lsp.commands): asks, then generates.
function M.continue_scene_with(command, ctx)
  local action_args = command.arguments and command.arguments[1]
  vim.ui.input({ prompt = "What should happen next? " }, function(answer)
    local args = M.with_instruction(action_args, answer)
    if args then -- Escape (nil) or an empty answer cancels
      M.generate(ctx.client_id, args, ctx.bufnr)
    end
  end)
end

--- `:StorytellerRewrite {style}` on lines or a visual selection: Rewrite selection with the
--- author's style brief as the tone (asked for when not given).
function M.rewrite_in_style(opts)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = compat.clients_of(bufnr, "storyteller")[1]
  if not client then
    return
  end
  -- The visual selection when the command came from one, else whole lines.
  local start_pos, end_pos = vim.api.nvim_buf_get_mark(bufnr, "<"), vim.api.nvim_buf_get_mark(bufnr, ">")
  if opts.range == 0 or start_pos[1] ~= opts.line1 or end_pos[1] ~= opts.line2 then
    start_pos = { opts.line1, 0 }
    end_pos = { opts.line2, math.max(#(vim.api.nvim_buf_get_lines(bufnr, opts.line2 - 1, opts.line2, false)[1] or "") - 1, 0) }
  end
  local params = vim.lsp.util.make_given_range_params(start_pos, end_pos, bufnr, client.offset_encoding)
  local function run(answer)
    local tone = trim(answer)
    if answer == nil or tone == "" then
      return
    end
    M.generate(client.id, {
      action = "rewriteSelection",
      tone = tone,
      uri = params.textDocument.uri,
      range = params.range,
    }, bufnr)
  end
  if opts.args and trim(opts.args) ~= "" then
    run(opts.args)
  else
    vim.ui.input({ prompt = "Rewrite in which style? " }, run)
  end
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
    -- 0.12's own cycling through the alternatives, where it has it.
    local select = vim.lsp.inline_completion.select
    for key, count in pairs({ next = 1, prev = -1 }) do
      if select and M.config.keymaps[key] then
        vim.keymap.set("i", M.config.keymaps[key], function()
          pcall(select, { count = count })
        end, { buffer = bufnr, desc = "StoryTeller: " .. key .. " alternative" })
      end
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
      return { "openai", "claude", "gemini", "deepseek", "yandex", "scaleway", "openrouter", "custom" }
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
  cmd("StorytellerPrompts", function()
    require("storyteller.prompts").pick()
  end, { desc = "Prompt versions: use one, or set its A/B weight" })
  cmd("StorytellerRewrite", function(opts)
    M.rewrite_in_style(opts)
  end, { nargs = "*", range = true, desc = "Rewrite the selection in a style: like Hemingway, terse" })
end

function M.setup(opts)
  M.config = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  ghost.highlight()
  commands()
  vim.lsp.commands[CONTINUE_WITH] = M.continue_scene_with
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
