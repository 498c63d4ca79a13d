-- `:StorytellerPrompts`: every prompt template version from `storyteller.prompts.list` with its
-- state, A/B weight, uses and kept rate (vim.ui.select); picking one offers what
-- `storyteller.prompts.setActive` knows: this version alone, in the A/B pool with a weight
-- (vim.ui.input), or weight 0 (out of the draw). The same choices as VS Code's "Prompt Versions".
local providers = require("storyteller.providers")

local M = {}

--- The last answer of setActive (the versions of the template afterwards), for tests.
M.last = { set = nil, error = nil }

M.texts = {
  prompt = "Prompt version",
  how = "Use {label} how?",
  only = "Use only this version",
  weight = "Add to the A/B test with a weight…",
  off = "Take out of the A/B test (weight 0)",
  weight_prompt = "A/B weight (0 or more): ",
  weight_invalid = "A number of 0 or more, please.",
  empty = "No prompt templates are loaded.",
}

local function say(text, level)
  vim.notify(text, level or vim.log.levels.INFO, { title = "StoryTeller" })
end

--- The versions in a `storyteller.prompts.list` result.
function M.versions(result)
  local templates = type(result) == "table" and result.templates or nil
  local out = {}
  for _, t in ipairs(type(templates) == "table" and templates or {}) do
    if type(t) == "table" and type(t.name) == "string" and type(t.version) == "number" then
      table.insert(out, t)
    end
  end
  return out
end

local function number_text(n)
  if n == math.floor(n) then
    return string.format("%d", n)
  end
  return (string.format("%.3f", n):gsub("0+$", ""))
end

--- One line per version: "continue_scene v2  active, weight 1  14 uses, 64% kept".
function M.describe(v)
  local state = v.active and ("active, weight " .. number_text(v.weight or 0)) or "inactive"
  local uses = v.usageCount or 0
  local usage = uses == 1 and "1 use" or (uses .. " uses")
  if uses > 0 then
    usage = usage .. string.format(", %d%% kept", math.floor((v.successRate or 0) * 100 + 0.5))
    if v.meaningful == false then
      usage = usage .. " (too few uses to judge yet)"
    end
  end
  return string.format("%s v%d  %s  %s", v.name, v.version, state, usage)
end

--- A weight typed by the author, or nil when it is not a number of 0 or more.
function M.parse_weight(text)
  text = vim.trim(text or "")
  if not (text:match("^%d+%.?%d*$") or text:match("^%.%d+$")) then
    return nil
  end
  local w = tonumber(text)
  if w == nil or w ~= w or w == math.huge or w < 0 then
    return nil
  end
  return w
end

local function set_active(args)
  providers.execute("storyteller.prompts.setActive", args, function(err, result)
    if err then
      M.last.error = err.message
      return say(err.message, vim.log.levels.ERROR)
    end
    local versions = M.versions(result)
    M.last.set = versions
    local lines = {}
    for _, v in ipairs(versions) do
      table.insert(lines, M.describe(v))
    end
    say(table.concat(lines, "\n"))
  end)
end

local function choose(v)
  local label = string.format("%s v%d", v.name, v.version)
  local choices = { M.texts.only, M.texts.weight, M.texts.off }
  vim.ui.select(choices, { prompt = (M.texts.how:gsub("{label}", label)) }, function(choice)
    if choice == M.texts.only then
      set_active({ name = v.name, version = v.version })
    elseif choice == M.texts.off then
      set_active({ name = v.name, version = v.version, weight = 0 })
    elseif choice == M.texts.weight then
      vim.schedule(function()
        local default = number_text(v.active and (v.weight or 1) or 1)
        vim.ui.input({ prompt = M.texts.weight_prompt, default = default }, function(answer)
          if answer == nil then
            return -- Escape
          end
          local weight = M.parse_weight(answer)
          if weight == nil then
            return say(M.texts.weight_invalid, vim.log.levels.WARN)
          end
          set_active({ name = v.name, version = v.version, weight = weight })
        end)
      end)
    end
  end)
end

--- `:StorytellerPrompts`
function M.pick()
  providers.execute("storyteller.prompts.list", {}, function(err, result)
    if err then
      return say(err.message, vim.log.levels.ERROR)
    end
    local versions = M.versions(result)
    if #versions == 0 then
      return say(M.texts.empty)
    end
    vim.ui.select(versions, { prompt = M.texts.prompt, format_item = M.describe }, function(v)
      if v then
        vim.schedule(function()
          choose(v)
        end)
      end
    end)
  end)
end

return M
