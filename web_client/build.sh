#!/usr/bin/env bash
# Builds the web client into web_client/dist: the core in WebAssembly, the
# editor bundle (CodeMirror 6, esbuild), the cluster page's script, index.html,
# cluster.html and style.css.
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules ] || npm ci --no-audit --no-fund
./build-wasm.sh >/dev/null
./node_modules/.bin/esbuild app=src/main.js cluster=src/cluster.js --bundle --format=esm --minify --sourcemap \
  --external:node:fs --outdir=dist --log-level=warning
cp index.html cluster.html style.css sw.js dist/
ls -l dist
