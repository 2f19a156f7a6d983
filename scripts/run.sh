#!/usr/bin/env bash
# Builds (Release) and runs weft-server on the embedded default store (SQLite
# under ./data), serving the web client when it has been built. Extra
# arguments go to weft-server (see `build/weft-server --help`), e.g.
#   scripts/run.sh --port 9000 --data-dir /var/lib/weft
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

weft_install_packages "${WEFT_APT_PACKAGES[@]}"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(weft_jobs)" --target weft-server

args=(--port "${WEFT_PORT:-8080}" --data-dir "${WEFT_DATA_DIR:-./data}")
if [ -d web_client/dist ]; then
  args+=(--web-root web_client/dist)
else
  echo "weft: no web client build (web_client/dist); serving the WebSocket endpoint and HTTP API only" >&2
fi
exec build/weft-server "${args[@]}" "$@"
