-- A small test harness for headless Neovim (0.7 and 0.11): named cases, failures collected, typing
-- through the real input loop (`H.run`, `H.type`), and the closing line "N passed, M failed";
-- exits non-zero on a failure.
local H = { passed = 0, failed = 0 }

local function out(line)
  -- Headless Neovim prints messages without a line end: start on a line of our own.
  io.stdout:write("\n" .. line .. "\n")
end
H.out = out

function H.eq(actual, expected, what)
  if not vim.deep_equal(actual, expected) then
    error(string.format("%s: expected %s, got %s", what or "value", vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

function H.ok(cond, what)
  if not cond then
    error(what or "expected a true value", 2)
  end
end

function H.case(name, fn)
  local ok, err = xpcall(fn, debug.traceback)
  if ok then
    H.passed = H.passed + 1
    out("ok - " .. name)
  else
    H.failed = H.failed + 1
    out("not ok - " .. name .. "\n    " .. tostring(err):gsub("\n", "\n    "))
  end
end

--- Waits up to `ms` for `cond()`; returns whether it came true.
function H.wait(ms, cond)
  return vim.wait(ms, cond, 20)
end

--- Runs `body` as a coroutine, so that `H.type` can hand control back to Neovim's main loop
--- (where typed keys are read) and carry on once the keys have been handled. Ends with
--- `H.finish()`; an error outside a case fails the run.
function H.run(body)
  local co = coroutine.create(function()
    body()
    H.finish()
  end)
  H.resume = function()
    local ok, err = coroutine.resume(co)
    if not ok then
      H.failed = H.failed + 1
      out("not ok - the test script stopped\n    " .. debug.traceback(co, tostring(err)):gsub("\n", "\n    "))
      H.finish()
    end
  end
  -- After all keys before it are handled, this key resumes the script (in any mode).
  vim.keymap.set({ "n", "i" }, "<Plug>(harness-resume)", function()
    vim.schedule(H.resume)
  end)
  H.resume()
end

--- Types `keys` (key notation, e.g. "A, <M-l>") as a user would: Neovim's main loop reads them
--- as keyboard input, with the mappings and autocommands that fire on real typing. Returns once
--- they have been handled. Only inside `H.run`.
function H.type(keys)
  vim.api.nvim_input(keys .. "<Plug>(harness-resume)")
  coroutine.yield()
end

function H.finish()
  local version = vim.version()
  out(string.format("# neovim %d.%d.%d", version.major, version.minor, version.patch))
  out(string.format("%d passed, %d failed", H.passed, H.failed))
  vim.cmd(H.failed > 0 and "cquit 1" or "qall!")
end

return H
