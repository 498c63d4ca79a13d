-- Ghost text from fixed inline-completion responses, without a server: where the extmark goes on
-- this Neovim version (inline on 0.10+, end of line before), what is drawn (the part not yet
-- typed, further lines as virtual lines), what accept inserts (UTF-16 ranges with emoji), and that
-- dismiss clears it. Run: nvim --headless -u NONE -i NONE -c "luafile editors/neovim/test/ghost_spec.lua"
local root = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h:h")
vim.opt.runtimepath:prepend(root)
package.path = root .. "/test/?.lua;" .. package.path

local H = require("harness")
local ghost = require("storyteller.ghost")
local compat = require("storyteller.compat")

-- Ghost text lives in insert mode, where the cursor may sit after the last character; these
-- tests run in normal mode, so let the cursor go there too.
vim.o.virtualedit = "onemore"

local function buffer(lines, row, col)
  vim.cmd("enew!")
  local bufnr = vim.api.nvim_get_current_buf()
  vim.api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
  vim.api.nvim_win_set_cursor(0, { row, col })
  return bufnr
end

local function marks(bufnr)
  return vim.api.nvim_buf_get_extmarks(bufnr, ghost.namespace, 0, -1, { details = true })
end

H.case("a suggestion is drawn at the cursor with the version's placement", function()
  local bufnr = buffer({ "The tide came in." }, 1, 17)
  H.ok(ghost.show(bufnr, nil, { items = { { insertText = " Gulls wheeled over the pier." } } }, "utf-16"), "shown")
  local m = marks(bufnr)
  H.eq(#m, 1, "one extmark")
  H.eq({ m[1][2], m[1][3] }, { 0, 17 }, "anchored at the cursor")
  H.eq(m[1][4].virt_text[1][1], " Gulls wheeled over the pier.", "ghost text")
  H.eq(m[1][4].virt_text_pos, compat.has_inline_virt_text and "inline" or "eol", "placement")
  H.eq(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), { "The tide came in." }, "the buffer is untouched")
end)

H.case("accept inserts the suggestion and moves the cursor after it", function()
  local bufnr = buffer({ "The tide came in." }, 1, 17)
  ghost.show(bufnr, nil, { { insertText = " Gulls wheeled over the pier." } }, "utf-16")
  H.ok(ghost.accept(bufnr), "accepted")
  H.eq(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), { "The tide came in. Gulls wheeled over the pier." }, "text")
  H.eq(vim.api.nvim_win_get_cursor(0), { 1, 46 }, "cursor")
  H.eq(#marks(bufnr), 0, "ghost text gone")
  H.eq(ghost.accept(bufnr), false, "nothing left to accept")
end)

H.case("a range over typed text draws only the rest and replaces the range on accept", function()
  -- The author typed "Ah 🙂 s"; the item replaces from after the emoji (UTF-16 character 6).
  local bufnr = buffer({ "Ah 🙂 s" }, 1, #"Ah 🙂 s")
  local item = {
    insertText = "she laughed.",
    range = { start = { line = 0, character = 6 }, ["end"] = { line = 0, character = 7 } },
  }
  H.ok(ghost.show(bufnr, nil, { items = { item } }, "utf-16"), "shown")
  H.eq(marks(bufnr)[1][4].virt_text[1][1], "he laughed.", "the typed 's' is not drawn again")
  ghost.accept(bufnr)
  H.eq(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), { "Ah 🙂 she laughed." }, "text")
end)

H.case("several lines: the first at the cursor, the rest as virtual lines", function()
  local bufnr = buffer({ "She waited." }, 1, 11)
  ghost.show(bufnr, nil, { items = { { insertText = " Nobody came.\n\nThe lamp went out." } } }, "utf-16")
  local m = marks(bufnr)[1][4]
  H.eq(m.virt_text[1][1], " Nobody came.", "first line")
  H.eq(#m.virt_lines, 2, "two virtual lines")
  H.eq(m.virt_lines[2][1][1], "The lamp went out.", "last line")
  ghost.accept(bufnr)
  H.eq(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), { "She waited. Nobody came.", "", "The lamp went out." }, "text")
  H.eq(vim.api.nvim_win_get_cursor(0), { 3, 18 }, "cursor at the end of the inserted text")
end)

H.case("a suggestion that contradicts the typed text is not shown", function()
  local bufnr = buffer({ "The sk" }, 1, 6)
  local item = { insertText = "sea", range = { start = { line = 0, character = 4 }, ["end"] = { line = 0, character = 6 } } }
  H.eq(ghost.show(bufnr, nil, { items = { item } }, "utf-16"), false, "not shown")
  H.eq(#marks(bufnr), 0, "no extmark")
end)

H.case("an empty result or empty text shows nothing; dismiss clears", function()
  local bufnr = buffer({ "Quiet." }, 1, 6)
  H.eq(ghost.show(bufnr, nil, { items = {} }, "utf-16"), false, "empty list")
  H.eq(ghost.show(bufnr, nil, { items = { { insertText = "" } } }, "utf-16"), false, "empty text")
  ghost.show(bufnr, nil, { items = { { insertText = { kind = "snippet", value = " Then thunder." } } } }, "utf-16")
  H.eq(#marks(bufnr), 1, "a StringValue item is shown")
  ghost.dismiss(bufnr)
  H.eq(#marks(bufnr), 0, "dismissed")
  H.eq(ghost.current(bufnr), nil, "no current suggestion")
end)

H.case("alternatives: next and previous cycle through them, accept takes the one shown", function()
  local bufnr = buffer({ "The tide came in." }, 1, 17)
  local result = {
    items = {
      { insertText = " Gulls wheeled over the pier.", command = { command = "storyteller.feedback", arguments = { { suggestionId = "a" } } } },
      { insertText = " Nobody came down to the boats.", command = { command = "storyteller.feedback", arguments = { { suggestionId = "b" } } } },
      { insertText = " Mara counted the lanterns.", command = { command = "storyteller.feedback", arguments = { { suggestionId = "c" } } } },
    },
  }
  H.ok(ghost.show(bufnr, nil, result, "utf-16"), "shown")
  local function drawn()
    return marks(bufnr)[1][4].virt_text[1][1]
  end
  H.eq(drawn(), " Gulls wheeled over the pier.", "the first")
  H.ok(ghost.cycle(bufnr, 1), "next")
  H.eq(drawn(), " Nobody came down to the boats.", "the second")
  H.eq(#marks(bufnr), 1, "one extmark at a time")
  H.ok(ghost.cycle(bufnr, 1), "next")
  H.ok(ghost.cycle(bufnr, 1), "next wraps")
  H.eq(drawn(), " Gulls wheeled over the pier.", "back to the first")
  H.ok(ghost.cycle(bufnr, -1), "previous wraps")
  H.eq(drawn(), " Mara counted the lanterns.", "the last")
  H.eq(ghost.current(bufnr).item.command.arguments[1].suggestionId, "c", "its own suggestion id")
  ghost.accept(bufnr)
  H.eq(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), { "The tide came in. Mara counted the lanterns." }, "text")
  -- One suggestion: nothing to cycle.
  ghost.show(bufnr, nil, { items = { { insertText = " Alone." } } }, "utf-16")
  H.eq(ghost.cycle(bufnr, 1), false, "no other alternative")
  ghost.dismiss(bufnr)
  H.eq(ghost.cycle(bufnr, 1), false, "nothing shown")
end)

H.case("Continue scene with…: the answer joins the action's arguments; Escape or empty cancels", function()
  local storyteller = require("storyteller")
  local action = { action = "continueScene", uri = "file:///n/ch1.md", range = {}, version = 3 }
  H.eq(storyteller.with_instruction(action, "  Tomas admits he lied.  "), {
    action = "continueScene", uri = "file:///n/ch1.md", range = {}, version = 3, instruction = "Tomas admits he lied.",
  }, "trimmed instruction")
  H.eq(action.instruction, nil, "the action's own arguments are left as they were")
  H.eq(storyteller.with_instruction(action, nil), nil, "Escape")
  H.eq(storyteller.with_instruction(action, "   "), nil, "empty")
  H.eq(storyteller.with_instruction(nil, "go on"), nil, "no arguments")
end)

H.case("the statusline text follows storyteller/status", function()
  local providers = require("storyteller.providers")
  -- The shape the server sends (see the real-server spec for the live notification).
  local openai = { id = 1, provider = "openai", displayName = "OpenAI" }
  local scaleway = { id = 2, provider = "scaleway", displayName = "Scaleway (EU)" }
  local list = {
    vim.tbl_extend("force", openai, { isPrimary = true, rateLimit = { perMinute = 50, remaining = 47 } }),
    vim.tbl_extend("force", scaleway, { rateLimit = { perMinute = 10, remaining = 9 } }),
  }
  H.eq(providers.status_text({ state = "ready", active = openai, primary = openai, providers = list }), "StoryTeller: OpenAI 47/50", "ready")
  H.eq(providers.status_text({ state = "degraded", active = scaleway, primary = openai, failover = true, providers = list }), "StoryTeller (backup): Scaleway (EU) 9/10", "degraded")
  H.eq(providers.status_text({ state = "notConfigured", active = vim.NIL, primary = vim.NIL, providers = {} }), "StoryTeller: not configured", "decoded JSON null")
  H.eq(providers.status_text({ state = "offline" }), "StoryTeller: offline", "offline")
  H.eq(providers.status_text({ state = "notConfigured" }), "StoryTeller: not configured", "not configured")
  H.eq(providers.status_text(nil), "", "no report yet")
end)

H.case("setup registers the user commands and the statusline", function()
  require("storyteller").setup({ cmd = { "false" }, filetypes = { "storyteller-none" } })
  for _, name in ipairs({ "StorytellerProviders", "StorytellerAddProvider", "StorytellerRemoveProvider", "StorytellerSetPrimary", "StorytellerStatus" }) do
    H.eq(vim.fn.exists(":" .. name), 2, name)
  end
  H.eq(require("storyteller").statusline(), "", "empty before any status")
  local caps = require("storyteller").client_config(0).capabilities
  H.ok(caps.textDocument.inlineCompletion, "announces inline completion")
  H.eq(caps.experimental.storyteller.openSettings, true, "announces openSettings handling")
  H.eq(caps.experimental.storyteller.askInstruction, true, "announces that it asks for instructions")
  H.eq(type(vim.lsp.commands["storyteller.continueSceneWith"]), "function", "handles the ask action's command")
  H.eq(vim.fn.exists(":StorytellerRewrite"), 2, "StorytellerRewrite")
end)

H.finish()
