#!/usr/bin/env bash
# Makes the npm tarballs of the three packages (packages/*): @weft/core,
# @weft/provider and @weft/codemirror, into the directory given (default:
# web_client/packages/), and prints their paths. Rebuilds the wasm core first
# when a source of it is newer than the built one, since @weft/core ships it.
#   web_client/pack.sh [OUTDIR]
set -euo pipefail
out="$(realpath -m "${1:-$(dirname "$0")/packages}")"
cd "$(dirname "$0")"
mkdir -p "$out"
[ -e node_modules/@weft/core ] || npm ci --no-audit --no-fund  # workspaces linked too
wasm=packages/core/dist/weft_core.wasm
if [ ! -f "$wasm" ] || [ -n "$(find ../src/core ../src/protocol ../include wasm build-wasm.sh -newer "$wasm" -print -quit)" ]; then
  ./build-wasm.sh >/dev/null
fi
for p in core provider codemirror; do
  name=$(cd "packages/$p" && npm pack --pack-destination "$out" --silent)
  echo "$out/$name"
done
