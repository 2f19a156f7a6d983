#!/usr/bin/env bash
# Builds (Release) and runs the weft server with the web client on the
# embedded default store. The server is not built yet (see README, Status):
# for now this builds the core and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

weft_install_packages "${WEFT_APT_PACKAGES[@]}"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(weft_jobs)"
echo "weft: the document core is built (build/libweft_core.a, build/bench/weft-trace-bench)."
echo "weft: the WebSocket server does not exist yet (issue #3); there is nothing to run." >&2
exit 1
