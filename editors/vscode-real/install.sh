#!/usr/bin/env bash
# Installs code-server 4.100.3 (VS Code 1.100.3) and playwright-core into editors/vscode-real/node_modules
# from the npm registry alone. Idempotent: does nothing when code-server is already installed at that
# version. Needs chromium, libkrb5-dev (kerberos builds from source), ripgrep and a C++ toolchain
# (argon2 builds from source too); editors/ci-deps.sh installs them first.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
if [ -x node_modules/.bin/code-server ] &&
    grep -q '"version": "4.100.3"' node_modules/code-server/package.json 2>/dev/null &&
    [ -d node_modules/playwright-core ]; then
    echo "code-server 4.100.3 already installed"
    exit 0
fi
# @vscode/ripgrep's postinstall downloads a binary from GitHub, which is not reachable: it looks in
# its cache first, so place there a tarball made from Debian's /usr/bin/rg.
tmp="${TMPDIR:-/tmp}"
cache="$tmp/vscode-ripgrep-cache-1.15.11"
tarball="$cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
if [ ! -s "$tarball" ]; then
    rg="$(command -v rg || true)"
    if [ -z "$rg" ]; then
        echo "vscode-real: ripgrep (rg) is missing: apt-get install ripgrep" >&2
        exit 1
    fi
    # The official tarball holds `rg` at its top level; the downloader unpacks it into its bin/.
    stage="$(mktemp -d)"
    mkdir -p "$cache"
    cp "$rg" "$stage/rg"
    tar -C "$stage" -czf "$tarball.part" rg
    mv "$tarball.part" "$tarball"
    rm -rf "$stage"
fi
export npm_config_nodedir=/usr npm_config_unsafe_perm=true npm_config_yes=true
# npm's cache (~/.npm) is reused when present; --prefer-offline avoids revalidating it.
if [ -f package-lock.json ]; then
    npm ci --prefer-offline --no-audit --no-fund --loglevel=error
else
    npm install --prefer-offline --no-audit --no-fund --loglevel=error
fi
test -x node_modules/.bin/code-server
