-- A small test harness for headless Neovim (0.7 and 0.11): named cases, failures collected, and the
-- closing line "N passed, M failed" (plus ", K skipped"); exits non-zero on a failure.
local H = { passed = 0, failed = 0, skipped = 0 }

local function out(line)
  io.stdout:write(line .. "\n")
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

function H.skip(name, why)
  H.skipped = H.skipped + 1
  out("skip - " .. name .. ": " .. why)
end

--- Waits up to `ms` for `cond()`; returns whether it came true.
function H.wait(ms, cond)
  return vim.wait(ms, cond, 20)
end

function H.finish()
  local version = vim.version()
  out(string.format("# neovim %d.%d.%d", version.major, version.minor, version.patch))
  out(string.format("%d passed, %d failed, %d skipped", H.passed, H.failed, H.skipped))
  vim.cmd(H.failed > 0 and "cquit 1" or "qall!")
end

return H
