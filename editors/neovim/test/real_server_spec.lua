-- Headless Neovim against the real storyteller-lsp with the provider simulator behind it: the
-- plugin starts the server for a Markdown buffer; :StorytellerAddProvider refuses a bad key and
-- adds a good one (typed into inputsecret); typing in insert mode brings ghost text that the
-- accept key inserts (and reports to the server); a code action chosen from
-- vim.lsp.buf.code_action() rewrites the buffer through workspace/applyEdit; "Continue scene with…"
-- asks with vim.ui.input and its direction reaches the provider's prompt (Escape sends nothing);
-- :StorytellerRewrite takes a style brief; the trigger key brings alternatives that Alt-]/Alt-[
-- cycle; the statusline
-- follows storyteller/status; :StorytellerStatus, :StorytellerSetPrimary and
-- :StorytellerRemoveProvider work (removing the primary, the server asks which one is next).
-- Every key lives in a throwaway data dir with the encrypted-file store; nothing touches a keychain.
-- Run: nvim --headless -u NONE -i NONE -c "luafile editors/neovim/test/real_server_spec.lua"
local root = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h:h")
local repo = vim.fn.fnamemodify(root, ":h:h")
vim.opt.runtimepath:prepend(root)
package.path = root .. "/test/?.lua;" .. package.path
-- `-u NONE` leaves filetype detection off; an author's Neovim has it on.
vim.cmd("filetype on")

local H = require("harness")

local bin = os.getenv("STORYTELLER_BIN") or (repo .. "/target/debug/storyteller-lsp")
local data_dir = vim.fn.tempname()
vim.fn.mkdir(data_dir, "p")
local env = {
  STORYTELLER_DATA_DIR = data_dir,
  STORYTELLER_CREDENTIALS_KEY = "editors-test-credentials-key",
  STORYTELLER_LOG = "warn",
  -- No system key may stand in for the keys this test types.
  OPENAI_API_KEY = "",
  ANTHROPIC_API_KEY = "",
  GEMINI_API_KEY = "",
  DEEPSEEK_API_KEY = "",
  YANDEX_API_KEY = "",
  SCW_SECRET_KEY = "",
}

local CHAPTER = {
  "# Chapter One",
  "",
  "Mara pushed open the lighthouse door. The stairs spiralled up into the dark, and somewhere above her",
}

local providers = require("storyteller.providers")
local ghost = require("storyteller.ghost")
local storyteller = require("storyteller")

-- What the user answers at Neovim's prompts (inputsecret, input, confirm), in order; the prompts
-- asked are recorded. The commands read these with blocking prompts that headless Neovim cannot
-- type into after an asynchronous server answer, so the answers stand in for the typing.
local prompts = {}
local function answer(fn_name, replies)
  local queue = vim.deepcopy(replies)
  vim.fn[fn_name] = function(prompt)
    table.insert(prompts, { fn = fn_name, prompt = prompt })
    return table.remove(queue, 1)
  end
end

local function buffer_text(bufnr)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
end

--- Runs a contract command and waits for its answer: `err, result`.
local function execute(command, args)
  local done, err, result = false, nil, nil
  providers.execute(command, args, function(e, r)
    done, err, result = true, e, r
  end)
  H.ok(H.wait(15000, function()
    return done
  end), command .. " answered")
  return err, result
end

H.run(function()
  local sim_base
  local sim_output = {}
  local sim_job = vim.fn.jobstart({ bin, "simulator" }, {
    env = env,
    on_stdout = function(_, lines)
      for _, line in ipairs(lines) do
        table.insert(sim_output, line)
        sim_base = sim_base or line:match("storyteller simulator listening on (http://127%.0%.0%.1:%d+)")
      end
    end,
  })
  local client, bufnr

  H.case("the plugin starts the real server for a Markdown buffer", function()
    H.ok(sim_job > 0, "could not run " .. bin .. " (cargo build, or set STORYTELLER_BIN)")
    H.ok(H.wait(15000, function()
      return sim_base ~= nil
    end), "the simulator did not start: " .. table.concat(sim_output, " "))

    storyteller.setup({
      cmd = { bin, "serve" },
      cmd_env = env,
      -- No debounce; a budget a loaded CI machine cannot overrun (the default is 5 s).
      settings = { credentialStore = "file", inline = { debounceMs = 0, timeoutMs = 30000 } },
      use_builtin_inline = false, -- this test is about the plugin's own ghost text
    })
    local dir = vim.fn.tempname()
    vim.fn.mkdir(dir, "p")
    vim.cmd("edit " .. dir .. "/chapter-01.md")
    bufnr = vim.api.nvim_get_current_buf()
    vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, CHAPTER)
    H.ok(H.wait(15000, function()
      client = require("storyteller.compat").clients_of(bufnr, "storyteller")[1]
      return client ~= nil and client.initialized == true
    end), "no initialized storyteller client for the Markdown buffer")
    local caps = client.server_capabilities
    H.eq(caps.inlineCompletionProvider, true, "inline completion advertised")
    H.ok(caps.codeActionProvider, "code actions advertised")
    for _, name in ipairs({ "storyteller.providers.add", "storyteller.providers.list", "storyteller.providers.remove", "storyteller.status", "storyteller.generate", "storyteller.feedback" }) do
      H.ok(vim.tbl_contains(caps.executeCommandProvider.commands, name), name .. " advertised")
    end
  end)

  H.case(":StorytellerAddProvider shows the server's refusal of a bad key and stores nothing", function()
    answer("inputsecret", { "sk-invalid-nvim-0000" })
    answer("input", { "gpt-4o" })
    vim.cmd("StorytellerAddProvider openai endpoint=" .. sim_base .. "/openai/v1")
    H.ok(H.wait(20000, function()
      return providers.last.added ~= nil
    end), "the add command finished")
    H.eq(providers.last.added.error, "The API key for OpenAI is invalid. Please check your key in Settings.", "§7 invalid-key text")
    H.eq(prompts[1], { fn = "inputsecret", prompt = "API key for OpenAI: " }, "the key is read hidden")
    local err, list = execute("storyteller.providers.list", {})
    H.eq(err, nil, "list error")
    H.eq(#list, 0, "nothing stored")
  end)

  H.case(":StorytellerAddProvider tests and adds a provider with a key typed into inputsecret", function()
    providers.last.added = nil
    answer("inputsecret", { "sk-nvim-good-key-4321" })
    answer("input", { "gpt-4o" })
    vim.cmd("StorytellerAddProvider openai primary endpoint=" .. sim_base .. "/openai/v1")
    H.ok(H.wait(20000, function()
      return providers.last.added ~= nil
    end), "the add command finished")
    H.eq(providers.last.added.error, nil, "add error")
    H.eq(type(providers.last.added.id), "number", "the new provider's id")
    providers.last.list = nil
    vim.cmd("StorytellerProviders")
    H.ok(H.wait(10000, function()
      return providers.last.list ~= nil
    end), "list answered")
    H.eq(#providers.last.list, 1, "one provider")
    local p = providers.last.list[1]
    H.eq({ p.provider, p.isPrimary, p.keyHint, p.keySource }, { "openai", true, "••••4321", "file" }, "kind, primary, masked key, store")
    -- storyteller/status follows the change; the statusline shows it.
    H.ok(H.wait(10000, function()
      return storyteller.status ~= nil and storyteller.status.state == "ready"
    end), "storyteller/status says ready")
    H.ok(storyteller.statusline():match("^StoryTeller: OpenAI %d+/50$"), "statusline: " .. storyteller.statusline())
  end)

  H.case("typing brings ghost text; the accept key inserts it and reports the acceptance", function()
    local last = #CHAPTER
    vim.api.nvim_win_set_cursor(0, { last, 0 })
    -- Append to the last line in insert mode, as the author would.
    H.type("A,")
    H.eq(vim.api.nvim_get_mode().mode, "i", "insert mode")
    H.ok(H.wait(15000, function()
      return ghost.current(bufnr) ~= nil
    end), "ghost text appeared")
    local marks = vim.api.nvim_buf_get_extmarks(bufnr, ghost.namespace, 0, -1, { details = true })
    H.eq(#marks, 1, "one ghost extmark")
    local row, col, details = marks[1][2], marks[1][3], marks[1][4]
    local typed = CHAPTER[last] .. ","
    H.eq({ row, col }, { last - 1, #typed }, "anchored at the cursor")
    H.eq(details.virt_text_pos, require("storyteller.compat").has_inline_virt_text and "inline" or "eol", "placement for this version")
    local shown = details.virt_text[1][1]
    H.ok(shown:match("%a"), "the ghost text has words: " .. vim.inspect(shown))
    H.eq(vim.api.nvim_buf_get_lines(bufnr, last - 1, last, false)[1], typed, "ghost text is not in the buffer")
    local item = ghost.current(bufnr).item

    H.type("<M-l>")
    local line = vim.api.nvim_buf_get_lines(bufnr, last - 1, last, false)[1]
    H.eq(line:sub(1, #typed + #shown), typed .. shown, "the suggestion follows the author's text")
    H.eq(#vim.api.nvim_buf_get_extmarks(bufnr, ghost.namespace, 0, -1, {}), 0, "ghost text gone")
    H.type("<Esc>")
    -- The accept key ran the item's storyteller.feedback; the server counts a suggestion once.
    H.eq(item.command.command, "storyteller.feedback", "the item carries the feedback command")
    H.ok(H.wait(10000, function()
      return next(client.requests) == nil
    end), "the feedback request was answered")
    local err = execute("storyteller.feedback", item.command.arguments[1])
    H.ok(err and err.message:find("already counted", 1, true), "a second report is refused: " .. vim.inspect(err))
  end)

  H.case("a code action chosen from the actions key (vim.lsp.buf.code_action) edits the buffer", function()
    local before = buffer_text(bufnr)
    local offered
    -- The user's pick in the code action menu: "Continue scene".
    vim.ui.select = function(items, _, on_choice)
      offered = items
      for i, item in ipairs(items) do
        local action = item.action or item[2] or item
        if action.title == "Continue scene" then
          return on_choice(item, i)
        end
      end
      on_choice(nil, nil)
    end
    -- At the end of the text, from insert mode with the plugin's key (in normal mode the cursor
    -- stands on the last character, and "at the cursor" is before it).
    H.type("GA<M-a>")
    H.ok(H.wait(30000, function()
      return buffer_text(bufnr) ~= before
    end), "the buffer changed (actions offered: " .. tostring(offered and #offered) .. ")")
    H.type("<Esc>")
    local after = buffer_text(bufnr)
    H.eq(after:sub(1, #before), before, "the author's text is kept")
    H.ok(after:sub(#before + 1):match("%a"), "the action wrote words")
  end)

  -- The openings of the ghost-text templates (prompts/inline_continuation*.md).
  local ghost_openings = {
    "You are a co-writer working inside an author's manuscript.",
    "Continue the manuscript from the exact point where the text before the cursor stops",
  }
  local function is_ghost_prompt(text)
    for _, opening in ipairs(ghost_openings) do
      if text:sub(1, #opening) == opening then
        return true
      end
    end
    return false
  end

  --- The code actions' prompts the simulator received from the server (GET /_sim/requests),
  --- newest last. Ghost-text requests are left out: an action's edit that lands in insert mode is
  --- a change like typing, and the ghost-text request it starts reaches the simulator whenever the
  --- server gets to it, before or after the author's Escape cancels it.
  local function prompts_sent()
    local body = vim.fn.system({ "curl", "-s", sim_base .. "/_sim/requests?provider=openai" })
    local ok, requests = pcall(vim.json and vim.json.decode or vim.fn.json_decode, body)
    H.ok(ok and type(requests) == "table", "the simulator's requests: " .. body:sub(1, 200))
    local out = {}
    for _, r in ipairs(requests) do
      if type(r.body) == "table" and r.body.messages then
        local text = r.body.messages[1].content
        if not is_ghost_prompt(text) then
          table.insert(out, text)
        end
      end
    end
    return out
  end

  H.case("Continue scene with… asks what should happen (vim.ui.input) and writes it", function()
    local before = buffer_text(bufnr)
    local direction = "Tomas comes back with a stranger's ledger under his coat."
    local titles, asked = {}, nil
    vim.ui.select = function(items, _, on_choice)
      for i, item in ipairs(items) do
        local action = item.action or item[2] or item
        table.insert(titles, action.title)
        if action.title == "Continue scene with…" then
          return on_choice(item, i)
        end
      end
      on_choice(nil, nil)
    end
    local input = vim.ui.input
    vim.ui.input = function(opts, on_confirm)
      asked = opts.prompt
      on_confirm("  " .. direction .. "  ")
    end
    H.type("GA<M-a>")
    H.ok(H.wait(30000, function()
      return buffer_text(bufnr) ~= before
    end), "the buffer changed (actions offered: " .. table.concat(titles, ", ") .. ")")
    H.type("<Esc>")
    vim.ui.input = input
    H.eq(asked, "What should happen next? ", "the author was asked")
    H.ok(vim.tbl_contains(titles, "Continue scene"), "Continue scene is still offered")
    local sent = prompts_sent()
    H.ok(sent[#sent]:find("<author_direction>\n" .. direction .. "\n</author_direction>", 1, true) ~= nil, "the direction reached the prompt")

    -- Escape sends nothing.
    local count = #sent
    local changed = buffer_text(bufnr)
    vim.ui.input = function(_, on_confirm)
      on_confirm(nil)
    end
    H.type("GA<M-a>")
    H.type("<Esc>")
    vim.ui.input = input
    vim.wait(300)
    H.eq(buffer_text(bufnr), changed, "nothing written after Escape")
    H.eq(#prompts_sent(), count, "no provider call after Escape")
  end)

  H.case(":StorytellerRewrite {style} rewrites the lines in the author's style brief", function()
    storyteller.last_generate = nil
    local count = #prompts_sent()
    vim.cmd("1StorytellerRewrite like Hemingway, terse")
    H.ok(H.wait(30000, function()
      return storyteller.last_generate ~= nil
    end), "generate answered")
    H.eq(storyteller.last_generate.err, nil, "no error")
    H.eq(storyteller.last_generate.result.applied, true, "applied")
    local sent = prompts_sent()
    H.eq(#sent, count + 1, "one provider call")
    H.ok(sent[#sent]:find("Requested tone: like Hemingway, terse\n", 1, true) ~= nil, "the brief is the tone")
    H.ok(sent[#sent]:find("<selection>\n# Chapter One\n</selection>", 1, true) ~= nil, "the line is the selection")
  end)

  H.case("the trigger key asks for alternatives; Alt-] and Alt-[ cycle through them", function()
    -- Typing brings one suggestion (automatic); the trigger key then asks for alternatives.
    H.type("GA ")
    H.ok(H.wait(15000, function()
      return ghost.current(bufnr) ~= nil
    end), "a suggestion while typing")
    H.eq(#ghost.current(bufnr).items, 1, "one while typing")
    H.type("<M-\\>")
    H.ok(H.wait(15000, function()
      local shown = ghost.current(bufnr)
      return shown ~= nil and #shown.items >= 2
    end), "alternatives arrived")
    local shown = ghost.current(bufnr)
    local first = shown.item.insertText
    local count = #shown.items
    H.type("<M-]>")
    H.eq(ghost.current(bufnr).index, 2, "the second is shown")
    H.ok(ghost.current(bufnr).item.insertText ~= first, "another text")
    local drawn = vim.api.nvim_buf_get_extmarks(bufnr, ghost.namespace, 0, -1, { details = true })
    H.eq(#drawn, 1, "one at a time")
    H.type("<M-[>")
    H.eq(ghost.current(bufnr).index, 1, "back to the first")
    H.type("<M-[>")
    H.eq(ghost.current(bufnr).index, count, "wraps to the last")
    H.type("<Esc>")
    H.eq(ghost.current(bufnr), nil, "leaving insert mode dismisses")
  end)

  H.case(":StorytellerStatus reports the state", function()
    providers.last.status = nil
    vim.cmd("StorytellerStatus")
    H.ok(H.wait(10000, function()
      return providers.last.status ~= nil
    end), "status answered")
    H.eq(providers.last.status.state, "ready", "state")
    H.eq(providers.last.status.active.provider, "openai", "active provider")
  end)

  H.case(":StorytellerPrompts lists every version with usage and success, and sets it active or its A/B weight", function()
    local prompts_mod = require("storyteller.prompts")
    local select, input = vim.ui.select, vim.ui.input
    local shown, how, typed = nil, nil, nil
    vim.ui.select = function(items, opts, on_choice)
      if opts.format_item then
        shown = vim.tbl_map(opts.format_item, items)
        for i, item in ipairs(items) do
          if item.name == "continue_scene" and item.version == 1 then
            return on_choice(item, i)
          end
        end
        return on_choice(nil, nil)
      end
      for i, item in ipairs(items) do
        if item == how then
          return on_choice(item, i)
        end
      end
      on_choice(nil, nil)
    end
    vim.ui.input = function(_, on_confirm)
      on_confirm(typed)
    end
    local function run(choice, answer)
      how, typed, prompts_mod.last.set = choice, answer, nil
      vim.cmd("StorytellerPrompts")
      H.ok(H.wait(15000, function()
        return prompts_mod.last.set ~= nil
      end), "setActive answered")
      return prompts_mod.last.set[1]
    end
    local ok, err = pcall(function()
      local v = run(prompts_mod.texts.weight, " 0.5 ")
      H.eq({ v.name, v.version, v.active, v.weight }, { "continue_scene", 1, true, 0.5 }, "in the A/B pool with weight 0.5")
      -- Every version is listed, with the server's usage count (ghost text was shown above).
      local _, listed = execute("storyteller.prompts.list", {})
      H.eq(#shown, #listed.templates, "every version")
      for i, line in ipairs(shown) do
        local t = listed.templates[i]
        H.ok(line:find(t.name .. " v" .. t.version .. "  ", 1, true) == 1, line)
        H.ok(line:match("  active, weight [%d.]+  %d+ uses?") or line:match("  inactive  %d+ uses?"), line)
      end
      -- Before the choice: continue_scene v1 was the active version, used by the code actions above.
      local before = vim.tbl_filter(function(line)
        return line:find("continue_scene v1  ", 1, true) == 1
      end, shown)[1]
      H.ok(before and before:match("^continue_scene v1  active, weight 1  %d+ uses?, %d+%% kept") ~= nil, vim.inspect(shown))
      v = run(prompts_mod.texts.off)
      H.eq({ v.active, v.weight }, { true, 0 }, "weight 0: out of the draw")
      v = run(prompts_mod.texts.only)
      H.eq({ v.active, v.weight }, { true, 1 }, "the only version, drawable again")
      -- A weight that is not a number sends nothing.
      how, typed, prompts_mod.last.set = prompts_mod.texts.weight, "-2", nil
      vim.cmd("StorytellerPrompts")
      vim.wait(300)
      H.eq(prompts_mod.last.set, nil, "nothing sent")
    end)
    vim.ui.select, vim.ui.input = select, input
    if not ok then
      error(err, 0)
    end
  end)

  -- The user's picks in Neovim's menus: a provider by kind for the plugin's pickers; for the
  -- server's own questions (window/showMessageRequest: vim.ui.select on 0.11, inputlist on 0.7)
  -- the first button. The questions asked are recorded.
  local pick_kind
  local questions = {}
  vim.ui.select = function(items, opts, on_choice)
    if items[1] and items[1].title then
      -- 0.11 prompts with the message and ": ".
      table.insert(questions, (opts.prompt:gsub(": $", "")))
      return on_choice(items[1], 1)
    end
    for i, item in ipairs(items) do
      if item.provider == pick_kind then
        return on_choice(item, i)
      end
    end
    on_choice(nil, nil)
  end
  vim.fn.inputlist = function(lines)
    table.insert(questions, lines[1])
    return 1
  end

  H.case(":StorytellerSetPrimary makes the chosen provider primary; the statusline follows", function()
    local err = execute("storyteller.providers.add", { provider = "claude", apiKey = "sk-ant-nvim-7777", endpoint = sim_base .. "/claude/v1" })
    H.eq(err, nil, "second provider added")
    pick_kind = "claude"
    vim.cmd("StorytellerSetPrimary")
    H.ok(H.wait(15000, function()
      local _, list = execute("storyteller.providers.list", {})
      return list[1] and list[1].provider == "claude" and list[1].isPrimary
    end), "Claude is the primary")
    local _, list = execute("storyteller.providers.list", {})
    H.eq(#vim.tbl_filter(function(p)
      return p.isPrimary
    end, list), 1, "exactly one primary")
    H.ok(H.wait(10000, function()
      return storyteller.statusline():match("^StoryTeller: Anthropic Claude %d+/40$") ~= nil
    end), "statusline: " .. storyteller.statusline())
  end)

  H.case(":StorytellerRemoveProvider asks with the §7 text; the server asks for the next primary", function()
    pick_kind = "claude"
    answer("confirm", { 1 })
    vim.cmd("StorytellerRemoveProvider")
    H.ok(H.wait(15000, function()
      return providers.last.removed ~= nil
    end), "removed")
    H.eq(providers.last.removed.removed, true, "the server removed it")
    local asked = prompts[#prompts]
    H.eq(asked.fn, "confirm", "a confirmation was asked")
    H.eq(asked.prompt, "Remove Anthropic Claude? This will delete the stored API key and you'll need to re-enter it if you want to use this provider again.", "§7 text")
    H.eq(questions, { "Anthropic Claude was the primary provider. Which provider should be primary now?" }, "the server's question")
    local _, list = execute("storyteller.providers.list", {})
    H.eq(#list, 1, "one provider left")
    H.eq({ list[1].provider, list[1].isPrimary }, { "openai", true }, "the answer made OpenAI primary")

    providers.last.removed = nil
    pick_kind = "openai"
    answer("confirm", { 1 })
    vim.cmd("StorytellerRemoveProvider")
    H.ok(H.wait(15000, function()
      return providers.last.removed ~= nil
    end), "removed")
    _, list = execute("storyteller.providers.list", {})
    H.eq(#list, 0, "no providers left")
    H.ok(H.wait(10000, function()
      return storyteller.statusline() == "StoryTeller: not configured"
    end), "statusline: " .. storyteller.statusline())
  end)

  if client then
    vim.lsp.stop_client(client.id)
  end
  if sim_job > 0 then
    vim.fn.jobstop(sim_job)
  end
  vim.fn.delete(data_dir, "rf")
end)
