#!/usr/bin/env bash
# Runs the load scenarios of issue #5 against a fresh weft-server (Release,
# SQLite persistence on) per scenario, on 127.0.0.1 only, each bounded in
# time, and writes load_tests/results/latest.md.
#
#   load_tests/run-scenarios.sh           # a, b, c, d (5,000 and 15,000 idle), e
#   load_tests/run-scenarios.sh --quick   # the same, scaled down (a minute or so)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh
weft_install_packages "${WEFT_APT_PACKAGES[@]}"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(weft_jobs)" --target weft-server weft-bots >/dev/null

quick=0
[ "${1:-}" = "--quick" ] && quick=1
duration=30; idle_big=15000
if [ $quick = 1 ]; then duration=5; idle_big=2000; fi

# Each side may hold 15,000+ sockets (the machine allows 20,000 open files).
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

mkdir -p load_tests/results
out=load_tests/results/latest.md
table=$(mktemp)
port=18480
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=""
}
trap stop_server EXIT

scenario() {  # label, weft-bots flags...
  local label=$1; shift
  local data; data=$(mktemp -d)
  port=$((port + 1))
  # All bots come from 127.0.0.1: lift the per-address connection limit.
  build/weft-server --port "$port" --data-dir "$data" --log-level warn --max-connections-per-address 0 &
  server_pid=$!
  for _ in $(seq 1 50); do
    if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then exec 3>&-; break; fi
    sleep 0.1
  done
  echo "==> $label" >&2
  timeout 600 build/load_tests/weft-bots --url "ws://127.0.0.1:$port/" --server-pid "$server_pid" \
    --table "$table" --label "$label" --no-progress "$@" || echo "    (scenario $label failed)" >&2
  stop_server
  rm -rf "$data"
}

scenario "a: 1 doc x 20 bots x 5 keys/s" --docs 1 --bots-per-doc 20 --rate 5 --duration "$duration"
scenario "b: 1 doc x 100 bots x 2 keys/s" --docs 1 --bots-per-doc 100 --rate 2 --duration "$duration" --ramp 2
scenario "c: 50 docs x 4 bots x 5 keys/s" --docs 50 --bots-per-doc 4 --rate 5 --duration "$duration" --ramp 2
scenario "d: 5,000 idle, 100 docs" --docs 100 --bots-per-doc 50 --idle --ramp 5 --threads 2 --quiet 20
scenario "d: $idle_big idle, 100 docs" --docs 100 --bots-per-doc $((idle_big / 100)) --idle --ramp 10 --threads 2 --quiet 60
scenario "e: reconnect storm, 20 docs x 25 bots" --docs 20 --bots-per-doc 25 --rate 1 --duration 5 --ramp 2 --storm --quiet 30

{
  echo "# Load scenarios: latest results"
  echo
  echo "Run by \`load_tests/run-scenarios.sh$([ $quick = 1 ] && echo ' --quick')\` on $(date -u +%Y-%m-%d), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores;"
  echo "weft-server (Release, SQLite persistence on) and weft-bots on the same machine, over 127.0.0.1."
  echo "Latency: from a bot's edit until every other bot of the document has applied it."
  echo
  echo "| scenario | connections | s | keystrokes | latency p50 / p95 / p99 / max ms | server CPU µs/keystroke | server peak RSS (RSS added per connection) | storm resync | errors / disconnects | bots CPU | converged |"
  echo "|---|---:|---:|---:|---|---:|---|---|---|---:|---|"
  cat "$table"
} > "$out"
rm -f "$table"
cat "$out"
