#!/usr/bin/env bash
# Installs weft from the build tree BUILD into a scratch prefix, then builds
# the examples (examples/) as an outside project would — find_package(weft
# COMPONENTS client) and weft::core / weft::client — and the C example again
# with pkg-config alone. Runs the C example, and the C++ client example against
# the installed weft-server.
#
#   tests/install/consumer_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/weft-consumer-XXXXXX")
server_pid=
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== cmake --install into $work/prefix"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/include/weft/weft.h"
test -f "$work/prefix/lib/cmake/weft/weftConfig.cmake"
test -f "$work/prefix/lib/pkgconfig/weft.pc"

echo "== find_package(weft) consumer build"
cmake -S "$src/examples" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/build" -j 2 >/dev/null
"$work/build/weft-embed-c" >/dev/null

echo "== pkg-config consumer build (C)"
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
cc -std=c11 -Wall -Wextra -Werror "$src/examples/embed_c/main.c" $(pkg-config --cflags --libs weft) -o "$work/embed_c_pc"
"$work/embed_c_pc" | grep -q "restored: Hello"

echo "== installed client against the installed server"
"$work/prefix/bin/weft-server" --port 0 --data-dir "$work/data" --log-level info 2>"$work/server.log" &
server_pid=$!
port=
for _ in $(seq 1 100); do
  port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$work/server.log" | head -1 | cut -d: -f2 || true)
  [[ -n "$port" ]] && break
  sleep 0.1
done
[[ -n "$port" ]] || { echo "installed weft-server did not start"; cat "$work/server.log"; exit 1; }
out=$(timeout 30 "$work/build/weft-embed-cpp" 127.0.0.1 "$port" consumer "hello from an installed client")
[[ "$out" == *"hello from an installed client"* ]] || { echo "unexpected output: $out"; exit 1; }
text=$(curl -sf "http://127.0.0.1:$port/api/docs/consumer/text")
[[ "$text" == "hello from an installed client" ]] || { echo "server text: $text"; exit 1; }
echo "consumer test passed"
