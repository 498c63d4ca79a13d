-- Headless Neovim against the real storyteller-lsp with the provider simulator behind it: the
-- plugin starts the server for a Markdown buffer, :StorytellerAddProvider adds a provider (key
-- typed into inputsecret), typing brings ghost text that accept inserts, a code action chosen from
-- vim.lsp.buf.code_action() rewrites the buffer through workspace/applyEdit, and the provider
-- commands list, report status and remove. Skips, saying why, until the server has the features.
-- Run: nvim --headless -u NONE -i NONE -c "luafile editors/neovim/test/real_server_spec.lua"
local root = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h:h")
local repo = vim.fn.fnamemodify(root, ":h:h")
vim.opt.runtimepath:prepend(root)
package.path = root .. "/test/?.lua;" .. package.path
vim.o.virtualedit = "onemore"

local H = require("harness")
local NAME = "real server: add provider, ghost text, code action, provider commands"

local bin = os.getenv("STORYTELLER_BIN") or (repo .. "/target/debug/storyteller-lsp")
if vim.fn.executable(bin) ~= 1 then
  H.skip(NAME, "server binary not found at " .. bin .. " (cargo build, or set STORYTELLER_BIN)")
  return H.finish()
end

local data_dir = vim.fn.tempname()
vim.fn.mkdir(data_dir, "p")
local env = {
  STORYTELLER_DATA_DIR = data_dir,
  STORYTELLER_CREDENTIALS_KEY = "editors-test-credentials-key",
  STORYTELLER_LOG = "warn",
  OPENAI_API_KEY = "",
  ANTHROPIC_API_KEY = "",
}

-- The simulator, as its own process.
local sim_base
local sim_output = {}
local sim_job = vim.fn.jobstart({ bin, "simulator" }, {
  env = env,
  on_stdout = function(_, lines)
    for _, line in ipairs(lines) do
      table.insert(sim_output, line)
      local base = line:match("storyteller simulator listening on (http://127%.0%.0%.1:%d+)")
      if base then
        sim_base = base
      end
    end
  end,
})
local function stop_sim()
  if sim_job > 0 then
    vim.fn.jobstop(sim_job)
  end
end
if not H.wait(15000, function()
  return sim_base ~= nil or vim.fn.jobwait({ sim_job }, 0)[1] ~= -1
end) or not sim_base then
  stop_sim()
  H.skip(NAME, "`storyteller-lsp simulator` is not available yet: it printed " .. vim.inspect(table.concat(sim_output, " "):sub(1, 80)))
  return H.finish()
end

local storyteller = require("storyteller")
storyteller.setup({
  cmd = { bin, "serve" },
  cmd_env = env,
  settings = { credentialStore = "file", inline = { debounceMs = 0 } },
  use_builtin_inline = false, -- this test is about the plugin's own ghost text
})

local dir = vim.fn.tempname()
vim.fn.mkdir(dir, "p")
vim.cmd("edit " .. dir .. "/chapter-01.md")
local bufnr = vim.api.nvim_get_current_buf()
vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, {
  "# Chapter One",
  "",
  "Mara pushed open the lighthouse door. The stairs spiralled up into the dark, and somewhere above her",
})

local client
local started = H.wait(15000, function()
  client = require("storyteller.compat").clients_of(bufnr, "storyteller")[1]
  return client ~= nil and client.initialized == true
end)
if not started then
  stop_sim()
  H.skip(NAME, bin .. " does not serve LSP yet (no initialized client after 15 s)")
  return H.finish()
end

local caps = client.server_capabilities or {}
local commands = (caps.executeCommandProvider or {}).commands or {}
local missing = {}
if not caps.inlineCompletionProvider then
  table.insert(missing, "it does not advertise inlineCompletionProvider")
end
for _, name in ipairs({ "storyteller.providers.add", "storyteller.providers.list", "storyteller.providers.remove", "storyteller.status", "storyteller.generate" }) do
  if not vim.tbl_contains(commands, name) then
    table.insert(missing, "executeCommandProvider.commands lacks " .. name)
  end
end
if #missing > 0 then
  stop_sim()
  H.skip(NAME, "the server is not ready for this test: " .. table.concat(missing, "; "))
  return H.finish()
end

local providers = require("storyteller.providers")
local ghost = require("storyteller.ghost")

-- What the user types at Neovim's prompts (inputsecret, input, confirm), in order; the prompts
-- asked are recorded. Headless Neovim has no keyboard, so the answers stand in for the typing.
local prompts = {}
local function answer(fn_name, replies)
  local queue = vim.deepcopy(replies)
  vim.fn[fn_name] = function(prompt)
    table.insert(prompts, { fn = fn_name, prompt = prompt })
    return table.remove(queue, 1)
  end
end

H.case(":StorytellerAddProvider tests and adds a provider with a key typed into inputsecret", function()
  -- The user types the API key, then keeps the default model.
  answer("inputsecret", { "sk-nvim-good-key-4321" })
  answer("input", { "gpt-4o" })
  vim.cmd("StorytellerAddProvider openai primary endpoint=" .. sim_base .. "/openai/v1")
  H.ok(H.wait(20000, function()
    return providers.last.added ~= nil
  end), "add finished")
  H.ok(providers.last.added.error == nil, "add failed: " .. tostring(providers.last.added.error))
  vim.cmd("StorytellerProviders")
  H.ok(H.wait(10000, function()
    return providers.last.list ~= nil
  end), "list answered")
  H.eq(#providers.last.list, 1, "one provider")
  H.eq(providers.last.list[1].provider, "openai", "its kind")
  H.eq(providers.last.list[1].keyHint, "••••4321", "the key is shown masked")
  H.eq(prompts[1], { fn = "inputsecret", prompt = "API key for OpenAI: " }, "the key is read hidden")
end)

H.case("typing brings ghost text; accept inserts it", function()
  local before = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  vim.api.nvim_win_set_cursor(0, { 3, #before[3] })
  vim.api.nvim_buf_set_text(bufnr, 2, #before[3], 2, #before[3], { "," })
  vim.api.nvim_win_set_cursor(0, { 3, #before[3] + 1 })
  vim.api.nvim_exec_autocmds("TextChangedI", { buffer = bufnr })
  H.ok(H.wait(15000, function()
    return ghost.current(bufnr) ~= nil
  end), "ghost text appeared")
  local marks = vim.api.nvim_buf_get_extmarks(bufnr, ghost.namespace, 0, -1, { details = true })
  H.eq(#marks, 1, "one ghost extmark")
  local shown = marks[1][4].virt_text[1][1]
  H.ok(#shown > 0, "the ghost text has words")
  H.ok(ghost.accept(bufnr), "accepted")
  local line = vim.api.nvim_buf_get_lines(bufnr, 2, 3, false)[1]
  H.ok(line:sub(1, #before[3] + 1) == before[3] .. ",", "the author's text is kept")
  H.ok(#line > #before[3] + 1, "the suggestion was inserted")
end)

H.case("a code action chosen from vim.lsp.buf.code_action() edits the buffer", function()
  local before = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
  local offered
  -- The user's pick in the code action menu: "Continue scene" when offered, else the first.
  vim.ui.select = function(items, _, on_choice)
    offered = items
    local pick = 1
    for i, item in ipairs(items) do
      local action = item.action or item[2] or item
      if type(action.title) == "string" and action.title:lower():find("continue") then
        pick = i
        break
      end
    end
    on_choice(items[pick], pick)
  end
  local last = vim.api.nvim_buf_line_count(bufnr)
  vim.api.nvim_win_set_cursor(0, { last, #vim.api.nvim_buf_get_lines(bufnr, last - 1, last, false)[1] })
  vim.lsp.buf.code_action()
  H.ok(H.wait(30000, function()
    return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n") ~= before
  end), "the buffer changed (actions offered: " .. tostring(offered and #offered) .. ")")
  local after = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
  H.ok(after:sub(1, 20) == before:sub(1, 20), "the start of the chapter is kept")
end)

H.case(":StorytellerStatus reports the state; the statusline follows storyteller/status", function()
  providers.last.status = nil
  vim.cmd("StorytellerStatus")
  H.ok(H.wait(10000, function()
    return providers.last.status ~= nil
  end), "status answered")
  H.ok(type(providers.last.status.state) == "string", "a state")
  H.ok(storyteller.status == nil or storyteller.statusline():find("StoryTeller") ~= nil, "statusline text")
end)

H.case(":StorytellerRemoveProvider asks, then removes the provider and its key", function()
  -- Pick the first provider, then answer the confirmation with Remove.
  vim.ui.select = function(items, _, on_choice)
    on_choice(items[1], 1)
  end
  answer("confirm", { 1 })
  vim.cmd("StorytellerRemoveProvider")
  H.ok(H.wait(15000, function()
    return providers.last.removed ~= nil
  end), "removed")
  providers.last.list = nil
  vim.cmd("StorytellerProviders")
  H.ok(H.wait(10000, function()
    return providers.last.list ~= nil
  end), "list answered")
  H.eq(#providers.last.list, 0, "no providers left")
  local asked = prompts[#prompts]
  H.eq(asked.fn, "confirm", "a confirmation was asked")
  H.ok(asked.prompt:find("This will delete the stored API key", 1, true) ~= nil, "with the §7 text: " .. asked.prompt)
end)

vim.lsp.stop_client(client.id)
stop_sim()
H.finish()
