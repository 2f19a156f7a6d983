#!/usr/bin/env bash
# Builds the core in WebAssembly (into packages/core/dist, part of @weft/core)
# and the editor page into web_client/dist: its bundle (CodeMirror 6 and the
# @weft packages, esbuild), the wasm next to it, the cluster page's script,
# index.html, cluster.html, style.css and the service worker.
set -euo pipefail
cd "$(dirname "$0")"
[ -e node_modules/@weft/core ] || npm ci --no-audit --no-fund  # workspaces linked too
./build-wasm.sh >/dev/null
./node_modules/.bin/esbuild app=src/main.js cluster=src/cluster.js --bundle --format=esm --minify --sourcemap \
  --outdir=dist --log-level=warning
cp index.html cluster.html style.css sw.js packages/core/dist/weft_core.wasm dist/
rm -f dist/weft_core.mjs  # bundled into app.js (left over from older builds)
ls -l dist
