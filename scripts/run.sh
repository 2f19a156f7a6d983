#!/usr/bin/env bash
# Builds (Release) weft-server, the tools the README uses next (weft-token to
# mint access tokens, weft-edit the terminal editor) and the web client, and
# runs the server on the embedded default store (SQLite under ./data),
# serving the editor. Extra
# arguments go to weft-server (see `build/weft-server --help`), e.g.
#   scripts/run.sh --port 9000 --data-dir /var/lib/weft
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

weft_install_packages "${WEFT_APT_PACKAGES[@]}"
weft_configure build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(weft_jobs)" --target weft-server weft-token weft-edit

weft_build_web_client

args=(--port "${WEFT_PORT:-8080}" --data-dir "${WEFT_DATA_DIR:-./data}" --web-root web_client/dist)
echo "weft: open http://127.0.0.1:${WEFT_PORT:-8080}/ (or /d/NAME) in a browser" >&2
exec build/weft-server "${args[@]}" "$@"
