#!/usr/bin/env bash
# Makes the npm tarballs of the three packages (packages/*): @weft/core,
# @weft/provider and @weft/codemirror, into the directory given (default:
# packages/), and prints their paths. Builds the wasm core first when it is
# missing, since @weft/core ships it.
#   web_client/pack.sh [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")"
out="$(realpath -m "${1:-packages}")"
mkdir -p "$out"
[ -e node_modules/@weft/core ] || npm ci --no-audit --no-fund  # workspaces linked too
[ -f packages/core/dist/weft_core.wasm ] || ./build-wasm.sh >/dev/null
for p in core provider codemirror; do
  name=$(cd "packages/$p" && npm pack --pack-destination "$out" --silent)
  echo "$out/$name"
done
