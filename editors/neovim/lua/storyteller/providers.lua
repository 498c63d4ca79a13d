-- Provider management from Neovim: the `:Storyteller*` commands call the server's executeCommand
-- contract (DESIGN.md §3) and show its answers. Keys are read with `inputsecret()` and passed
-- straight into the one request that needs them; they are never echoed, logged or kept.
local compat = require("storyteller.compat")
local texts = require("storyteller.texts")

local M = {}

--- The last answers, for the statusline and for tests.
M.last = { list = nil, status = nil, added = nil, removed = nil }

local function fill(template, values)
  return (template:gsub("{(%w+)}", function(name)
    return values[name] or ("{" .. name .. "}")
  end))
end
M.fill = fill

local function say(text, level)
  vim.notify(text, level or vim.log.levels.INFO, { title = "StoryTeller" })
end

local function client_for(bufnr)
  local found = compat.clients_of(bufnr or vim.api.nvim_get_current_buf(), "storyteller")[1]
  if found then
    return found
  end
  for _, client in pairs(vim.lsp.get_clients and vim.lsp.get_clients() or vim.lsp.get_active_clients()) do
    if client.name == "storyteller" then
      return client
    end
  end
end

--- Runs one contract command; `callback(err, result)` where err has `.message`.
function M.execute(command, args, callback)
  local client = client_for()
  if not client then
    callback({ message = "StoryTeller is not running: open a Markdown or text file first." })
    return
  end
  -- The contract takes one JSON object; an empty Lua table would be encoded as `[]`.
  if args == nil or next(args) == nil then
    args = vim.empty_dict()
  end
  compat.request(client, "workspace/executeCommand", { command = command, arguments = { args } }, callback)
end

-- The list commands answer a JSON array.
local function list_in(result)
  return type(result) == "table" and result or {}
end
M.list_in = list_in

local function name_of(p)
  return (p.displayName and p.displayName ~= "" and p.displayName) or p.provider
end

function M.describe(providers)
  if #providers == 0 then
    return texts.empty_list
  end
  local out = {}
  for _, p in ipairs(providers) do
    table.insert(out, string.format("%s %-28s %-36s %s%s", p.isPrimary and "*" or " ", name_of(p), p.model or "", p.keyHint or "", p.isActive == false and "  (inactive)" or ""))
  end
  return table.concat(out, "\n")
end

function M.list(callback)
  M.execute("storyteller.providers.list", {}, function(err, result)
    if err then
      say(err.message, vim.log.levels.ERROR)
      return callback and callback(err)
    end
    local providers = list_in(result)
    M.last.list = providers
    say(M.describe(providers))
    if callback then
      callback(nil, providers)
    end
  end)
end

local function select(items, prompt, format, on_choice)
  vim.ui.select(items, { prompt = prompt, format_item = format }, on_choice)
end

--- `:StorytellerAddProvider [kind] [model=...] [endpoint=...]`
function M.add(args)
  args = args or {}
  M.execute("storyteller.providers.catalog", {}, function(err, result)
    if err then
      return say(err.message, vim.log.levels.ERROR)
    end
    local catalog = list_in(result)
    local function with_kind(entry)
      if not entry then
        return
      end
      -- Prompts run after the current callback so that typeahead reaches them in order.
      vim.schedule(function()
        local key = vim.fn.inputsecret("API key for " .. entry.displayName .. ": ")
        local model = args.model or vim.fn.input("Model: ", entry.defaultModel or "")
        local endpoint = args.endpoint
        if entry.provider == "custom" and not endpoint then
          endpoint = vim.fn.input("Endpoint (e.g. http://localhost:11434/v1): ")
        end
        -- Test and add send the same fields; `primary` belongs to add only.
        local request = { provider = entry.provider }
        if key ~= "" then
          request.apiKey = key -- Custom servers may need no key
        end
        key = nil
        if model ~= "" then
          request.model = model
        end
        if endpoint and endpoint ~= "" then
          request.endpoint = endpoint
        end
        say(texts.testing_connection)
        M.execute("storyteller.providers.test", request, function(test_err, tested)
          if test_err then
            request = nil
            M.last.added = { error = test_err.message }
            return say(test_err.message, vim.log.levels.ERROR)
          end
          say(fill(texts.test_ok, { model = (tested and tested.model) or request.model or "" }))
          if args.primary then
            request.primary = true
          end
          M.execute("storyteller.providers.add", request, function(add_err, added)
            request = nil
            if add_err then
              M.last.added = { error = add_err.message }
              return say(add_err.message, vim.log.levels.ERROR)
            end
            M.last.added = added or {}
            say(texts.provider_added)
          end)
        end)
      end)
    end
    if args.kind then
      for _, entry in ipairs(catalog) do
        if entry.provider == args.kind then
          return with_kind(entry)
        end
      end
      return say("Unknown provider " .. args.kind, vim.log.levels.ERROR)
    end
    select(catalog, "Provider", function(e)
      return e.displayName
    end, with_kind)
  end)
end

local function pick_provider(prompt, then_do)
  M.execute("storyteller.providers.list", {}, function(err, result)
    if err then
      return say(err.message, vim.log.levels.ERROR)
    end
    local providers = list_in(result)
    if #providers == 0 then
      return say(texts.empty_list)
    end
    select(providers, prompt, name_of, function(p)
      if p then
        vim.schedule(function()
          then_do(p)
        end)
      end
    end)
  end)
end

function M.remove()
  pick_provider("Remove provider", function(p)
    local answer = vim.fn.confirm(fill(texts.confirm_remove, { provider = name_of(p) }), "&Remove\n&Cancel", 2)
    if answer ~= 1 then
      return
    end
    M.execute("storyteller.providers.remove", { id = p.id, confirmed = true }, function(err, result)
      if err then
        return say(err.message, vim.log.levels.ERROR)
      end
      M.last.removed = result or {}
      say("Removed " .. name_of(p))
    end)
  end)
end

function M.set_primary()
  pick_provider("Primary provider", function(p)
    M.execute("storyteller.providers.setPrimary", { id = p.id }, function(err)
      if err then
        return say(err.message, vim.log.levels.ERROR)
      end
      say(name_of(p) .. " is now the primary provider")
    end)
  end)
end

--- The statusline text for a status report (same shape as `storyteller.status`).
function M.status_text(report)
  if type(report) ~= "table" or type(report.state) ~= "string" then
    return ""
  end
  local providers = type(report.providers) == "table" and report.providers or {}
  local function find(ref)
    if ref == nil or ref == vim.NIL then
      return nil
    end
    for _, p in ipairs(providers) do
      if p.id == ref or p.provider == ref or p.displayName == ref or (type(ref) == "table" and p.id == ref.id) then
        return p
      end
    end
    if type(ref) == "table" and ref.provider then
      return ref
    end
  end
  local active = find(report.active) or find(report.primary)
  local quota = ""
  if active and type(active.rateLimit) == "table" and type(active.rateLimit.remaining) == "number" then
    quota = type(active.rateLimit.perMinute) == "number" and string.format(" %d/%d", active.rateLimit.remaining, active.rateLimit.perMinute) or string.format(" %d left", active.rateLimit.remaining)
  end
  local name = active and name_of(active) or ""
  if report.state == "ready" then
    return "StoryTeller" .. (name ~= "" and (": " .. name) or "") .. quota
  elseif report.state == "degraded" then
    return "StoryTeller (backup)" .. (name ~= "" and (": " .. name) or "") .. quota
  elseif report.state == "offline" then
    return "StoryTeller: offline"
  elseif report.state == "notConfigured" then
    return "StoryTeller: not configured"
  end
  return "StoryTeller: " .. report.state
end

function M.status()
  M.execute("storyteller.status", {}, function(err, result)
    if err then
      return say(err.message, vim.log.levels.ERROR)
    end
    M.last.status = result
    local line = M.status_text(result)
    if type(result) == "table" and result.state == "offline" then
      line = line .. "\n" .. texts.offline
    elseif type(result) == "table" and result.state == "notConfigured" then
      line = line .. "\n" .. texts.not_configured .. " Run :StorytellerAddProvider"
    end
    say(line)
  end)
end

return M
