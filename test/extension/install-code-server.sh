#!/usr/bin/env bash
# Installs code-server 4.96.4 (VS Code 1.96.4 on Node 20) and playwright-core into a cache
# folder outside the repo, following shared/VSCODE-TESTING.md. Idempotent: the marker file
# is written last, so a half-done install is redone from the start.
#   CODE_SERVER_CACHE   where to install (default ~/.cache/servestack-code-server)
set -euo pipefail

CACHE="${CODE_SERVER_CACHE:-$HOME/.cache/servestack-code-server}"
VERSION=4.96.4
PLAYWRIGHT=1.65.1
MARKER="$CACHE/.installed-$VERSION"

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v rg >/dev/null 2>&1 || need_apt+=(ripgrep)
if (( ${#need_apt[@]} )); then
  echo "apt-get install ${need_apt[*]}"
  SUDO=""; [[ "$(id -u)" == 0 ]] || SUDO=sudo
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${need_apt[@]}"
fi

if [[ -f "$MARKER" ]]; then
  echo "code-server $VERSION already installed in $CACHE"
  exit 0
fi

rm -rf "$CACHE"
mkdir -p "$CACHE"
cd "$CACHE"
echo '{ "name": "servestack-code-server-cache", "private": true }' > package.json
npm install --no-audit --no-fund --ignore-scripts "code-server@$VERSION" "playwright-core@$PLAYWRIGHT"

cd "$CACHE/node_modules/code-server/lib/vscode"
# It pins @vscode/proxy-agent to a tarball outside the registry.
if [[ -f npm-shrinkwrap.json ]]; then mv npm-shrinkwrap.json npm-shrinkwrap.json.off; fi
npm install --no-audit --no-fund --omit=dev --ignore-scripts
# kerberos is skipped: it needs libkrb5-dev and only serves proxy authentication.
npm rebuild node-pty @parcel/watcher @vscode/spdlog native-watchdog
ln -sfn node_modules node_modules.asar
mkdir -p node_modules/@vscode/ripgrep/bin
ln -sfn "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
(cd bin/remote-cli && ln -sfn code-linux.sh code-server)
(cd bin/helpers && ln -sfn browser-linux.sh browser.sh)

cd "$CACHE"
npm rebuild argon2
node node_modules/code-server/out/node/entry.js --version
touch "$MARKER"
echo "code-server $VERSION installed in $CACHE"
