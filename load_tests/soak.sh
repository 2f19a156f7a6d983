#!/usr/bin/env bash
# Soak: rounds of bots typing into fresh documents against one weft-server
# (persistence on, documents unloaded 0.5 s after their last client leaves),
# sampling the server's RSS after every round. Fails if RSS keeps growing
# instead of levelling off, or if any round does not converge.
#
#   load_tests/soak.sh          # short: 8 rounds, about 40 s (run by scripts/test.sh)
#   load_tests/soak.sh --long   # 60 rounds, about 8 minutes
#
# Expects a Release build in build/ (scripts/test.sh makes one); --long
# writes load_tests/results/soak-long.json.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=8 duration=3 docs=10 json=$(mktemp)
if [ "${1:-}" = "--long" ]; then rounds=60 duration=6 docs=20 json=load_tests/results/soak-long.json; fi

data=$(mktemp -d)
log=$(mktemp)
build/weft-server --port 0 --data-dir "$data" --log-level info --idle-unload-ms 500 2>"$log" &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true; rm -rf "$data" "$log"' EXIT
port=
for _ in $(seq 1 100); do
  port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | head -1 | cut -d: -f2 || true)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "weft-server did not start"; cat "$log"; exit 1; }

mkdir -p load_tests/results
timeout $((rounds * (duration + 20) + 60)) build/load_tests/weft-bots --url "ws://127.0.0.1:$port/" \
  --server-pid "$server_pid" --docs "$docs" --bots-per-doc 4 --rate 8 --duration "$duration" --ramp 0.5 \
  --quiet 5 --soak "$rounds" --soak-pause 1.5 --json "$json"
