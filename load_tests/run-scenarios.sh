#!/usr/bin/env bash
# Runs the load scenarios of issue #5 against a fresh weft-server (Release,
# SQLite persistence on) per scenario, on 127.0.0.1 only, each bounded in
# time, and writes load_tests/results/latest.md. After each typing scenario
# it measures the loopback floor (build/bench/weft-loopback-floor: the
# kernel's CPU for one keystroke's receive and sends over loopback, with as
# many peers as the scenario has bots per document, median of 3) and shows
# the server's CPU per keystroke as a multiple of it.
#
#   load_tests/run-scenarios.sh             # a, b, c, d (5,000 and 15,000 idle), e (about 5 minutes)
#   load_tests/run-scenarios.sh --quick     # the same, scaled down (about a minute)
#   load_tests/run-scenarios.sh --threads N # weft-server --threads N and weft-bots --threads N
#
# Scaling mode: 4 bots per document at 5 keys/s, for every documents count and
# every server thread count listed, a fresh server each; prints the table
# "documents | server --threads | keystrokes/s | CPU per keystroke | p99" and
# writes load_tests/results/scaling-latest.md. Rerun it on a bigger machine
# with longer lists:
#
#   load_tests/run-scenarios.sh --scaling [--docs-list "10 50 100 200"] \
#       [--threads-list "1 2"] [--bots-threads T] [--duration S] [--quick]
#
# Defaults: documents "10 50 100 200" (--quick: "10 50"), server threads the
# powers of two up to the number of cores, the bots' threads 2 (or --threads N),
# 10 s of typing per run (--quick: 5). Every run is bounded by `timeout`.
# WEFT_BUILD_DIR (default build) names the build directory to use.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

quick=0 scaling=0 threads="" bots_threads="" docs_list="" threads_list="" duration=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --scaling) scaling=1 ;;
    --threads) threads=${2:?--threads needs a value}; shift ;;
    --bots-threads) bots_threads=${2:?--bots-threads needs a value}; shift ;;
    --docs-list) docs_list=${2:?--docs-list needs a value}; shift ;;
    --threads-list) threads_list=${2:?--threads-list needs a value}; shift ;;
    --duration) duration=${2:?--duration needs a value}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run-scenarios.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for n in $threads $bots_threads $duration $docs_list $threads_list; do
  [[ $n =~ ^[0-9]+$ && $n -gt 0 ]] || { echo "run-scenarios.sh: not a positive number: $n" >&2; exit 2; }
done

source scripts/common.sh
weft_install_packages "${WEFT_APT_PACKAGES[@]}" jq
build=${WEFT_BUILD_DIR:-build}
weft_configure "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$(weft_jobs)" --target weft-server weft-bots weft-loopback-floor >/dev/null
server_bin=$build/weft-server bots_bin=$build/load_tests/weft-bots floor_bin=$build/bench/weft-loopback-floor

# Each side may hold 15,000+ sockets (the machine allows 20,000 open files).
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

server_flags=() bots_flags=()
[ -n "$threads" ] && server_flags=(--threads "$threads")
bots_threads=${bots_threads:-$threads}
[ -n "$bots_threads" ] && bots_flags=(--threads "$bots_threads")

mkdir -p load_tests/results
work=$(mktemp -d)
port=18480
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=""
}
trap 'stop_server; rm -rf "$work"' EXIT

# run_bots JSON TIMEOUT weft-bots flags...: a fresh server, then the bots
# against it; the report lands in JSON (absent if the bots did not finish).
run_bots() {
  local json=$1 limit=$2; shift 2
  local data; data=$(mktemp -d)
  port=$((port + 1))
  # All bots come from 127.0.0.1: lift the per-address connection limit.
  "$server_bin" --port "$port" --data-dir "$data" --log-level warn --max-connections-per-address 0 \
    ${server_flags[@]+"${server_flags[@]}"} &
  server_pid=$!
  for _ in $(seq 1 50); do
    # (In a subshell: a bare `exec 3<>... 2>/dev/null` would silence this shell's stderr for good.)
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.1
  done
  rm -f "$json"
  timeout "$limit" "$bots_bin" --url "ws://127.0.0.1:$port/" --server-pid "$server_pid" --json "$json" \
    --no-progress ${bots_flags[@]+"${bots_flags[@]}"} "$@" >&2 || echo "    (run failed: exit $?)" >&2
  stop_server
  rm -rf "$data"
}

# floor PEERS: the loopback floor in µs per keystroke, median of 3 runs,
# each bounded (the same number of frame sends per run whatever the peers).
floor() {
  local peers=$1 budget=200000
  [ $quick = 1 ] && budget=60000
  local keys=$((budget / peers)); [ $keys -lt 500 ] && keys=500
  for _ in 1 2 3; do
    timeout 120 "$floor_bin" --peers "$peers" --keystrokes "$keys" | jq -r '.cpu_us_per_keystroke' || echo nan
  done | sort -g | sed -n 2p
}

num() { jq -r "$1 // empty" "$2"; }

machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"

# ---- scaling mode ----------------------------------------------------------------
if [ $scaling = 1 ]; then
  duration=${duration:-$([ $quick = 1 ] && echo 5 || echo 10)}
  docs_list=${docs_list:-$([ $quick = 1 ] && echo "10 50" || echo "10 50 100 200")}
  if [ -z "$threads_list" ]; then
    t=1; threads_list=""
    while [ $t -le "$(nproc)" ]; do threads_list="$threads_list $t"; t=$((t * 2)); done
  fi
  bots_flags=(--threads "${bots_threads:-2}")
  out=load_tests/results/scaling-latest.md
  rows=$work/rows
  : > "$rows"
  for t in $threads_list; do
    server_flags=(--threads "$t")
    for d in $docs_list; do
      echo "==> scaling: $d documents, server --threads $t" >&2
      json=$work/scaling.json
      run_bots "$json" $((duration + 150)) --docs "$d" --bots-per-doc 4 --rate 5 --duration "$duration" --ramp 2 --quiet 10
      if [ -s "$json" ]; then
        jq -r --arg d "$d" --arg t "$t" '[$d, $t, .keystrokes_per_s, .server_cpu.us_per_keystroke,
            .server_cpu.percent_of_core, .latency_ms.p99, .ops_never_arrived, .schedule_lag_ms.max,
            .bots_cpu.percent_of_core, (if .converged and .errors == 0 then "yes" else "**NO**" end)] | @tsv' "$json" |
          while IFS=$'\t' read -r d t kps us pct p99 lost lag bots conv; do
            printf '| %s | %s | %.0f | %.1f µs (%.1f%% of a core) | %.2f ms | %s | %.1f | %.0f%% | %s |\n' \
              "$d" "$t" "$kps" "$us" "$pct" "$p99" "$lost" "$lag" "$bots" "$conv"
          done >> "$rows"
      else
        printf '| %s | %s | (failed) | | | | | | |\n' "$d" "$t" >> "$rows"
      fi
    done
  done
  f4=$(floor 4)
  {
    echo "# Load scaling: latest results"
    echo
    echo "Run by \`load_tests/run-scenarios.sh --scaling$([ $quick = 1 ] && echo ' --quick')\` on $(date -u +%Y-%m-%d), $machine;"
    echo "4 bots per document at 5 keys/s for $duration s, weft-bots --threads ${bots_threads:-2}, a fresh weft-server"
    echo "(Release, SQLite persistence on) per row, all on the same machine over 127.0.0.1. CPU per keystroke: the"
    echo "server's (utime+stime from /proc) over the typing phase; p99: from a keystroke's scheduled time until every"
    echo "other bot of its document applied it. Loopback floor with 4 peers: $f4 µs per keystroke."
    echo
    echo "| documents | server --threads | keystrokes/s | CPU per keystroke | p99 | ops never arrived | max schedule lag ms | bots CPU | converged |"
    echo "|---:|---:|---:|---|---:|---:|---:|---:|---|"
    cat "$rows"
  } > "$out"
  cat "$out"
  exit 0
fi

# ---- scenarios ----------------------------------------------------------------------
duration=${duration:-$([ $quick = 1 ] && echo 5 || echo 30)}
idle_big=15000
[ $quick = 1 ] && idle_big=2000
out=load_tests/results/latest.md
rows=$work/rows
: > "$rows"

scenario() {  # label, bots per document (for the loopback floor; 0: idle), weft-bots flags...
  local label=$1 peers=$2; shift 2
  echo "==> $label" >&2
  local json=$work/scenario.json
  run_bots "$json" 600 "$@"
  if [ ! -s "$json" ]; then
    printf '| %s | (failed) |||||||||||||\n' "$label" >> "$rows"
    return
  fi
  local f="" fcol="-" mult="-"
  if [ "$peers" -gt 0 ]; then
    f=$(floor "$peers")
    fcol="$f ($peers peers)"
    mult=$(awk -v s="$(num .server_cpu.us_per_keystroke "$json")" -v f="$f" 'BEGIN { if (f > 0) printf "%.1f×", s / f; else print "-" }')
  fi
  jq -r '[.connections, .seconds, .keystrokes, .keystrokes_per_s, .ops_sent, .ops_with_latency, .ops_never_arrived,
          .latency_ms.p50, .latency_ms.p95, .latency_ms.p99, .latency_ms.max, .schedule_lag_ms.max,
          .server_cpu.us_per_keystroke, .server_cpu.percent_of_core, .bots_cpu.us_per_keystroke, .bots_cpu.percent_of_core,
          .bots_cpu.percent_of_core_whole_run, .server_peak_rss_mib, .server_rss_mib, .server_rss_before_mib,
          .storm_resync_s, .errors, .disconnects, (if .converged then "yes" else "**NO**: " + .detail end)] | @tsv' "$json" |
    while IFS=$'\t' read -r conns secs keys kps sent withlat lost p50 p95 p99 max lag sus spct bus bpct bwhole peak rss before storm errs disc conv; do
      local kib; kib=$(awk -v r="$rss" -v b="$before" -v c="$conns" 'BEGIN { printf "%.2f", (c > 0 && r > 0) ? (r - b) * 1024 / c : 0 }')
      if [ "$keys" -gt 0 ]; then
        printf '| %s | %s | %.0f | %s (%.0f/s) | %s / %s / %s | %.2f / %.2f / %.2f / %.2f | %.2f | %.1f (%.1f%%) | %s | %s | %.1f (%.1f%%) | %.1f MiB (%s KiB/conn) | %s | %s / %s | %s |\n' \
          "$label" "$conns" "$secs" "$keys" "$kps" "$sent" "$withlat" "$lost" "$p50" "$p95" "$p99" "$max" "$lag" \
          "$sus" "$spct" "$fcol" "$mult" "$bus" "$bpct" "$peak" "$kib" \
          "$(awk -v s="$storm" 'BEGIN { if (s > 0) printf "%.2f s", s; else print "-" }')" "$errs" "$disc" "$conv"
      else
        printf '| %s | %s | - | - | - | - | - | - | - | - | - (%.0f%% whole run) | %.1f MiB (%s KiB/conn) | - | %s / %s | %s |\n' \
          "$label" "$conns" "$bwhole" "$peak" "$kib" "$errs" "$disc" "$conv"
      fi
    done >> "$rows"
}

scenario "a: 1 doc x 20 bots x 5 keys/s" 20 --docs 1 --bots-per-doc 20 --rate 5 --duration "$duration"
scenario "b: 1 doc x 100 bots x 2 keys/s" 100 --docs 1 --bots-per-doc 100 --rate 2 --duration "$duration" --ramp 2
scenario "c: 50 docs x 4 bots x 5 keys/s" 4 --docs 50 --bots-per-doc 4 --rate 5 --duration "$duration" --ramp 2
scenario "d: 5,000 idle, 100 docs" 0 --docs 100 --bots-per-doc 50 --idle --ramp 5 --quiet 20
scenario "d: $idle_big idle, 100 docs" 0 --docs 100 --bots-per-doc $((idle_big / 100)) --idle --ramp 10 --quiet 60
scenario "e: reconnect storm, 20 docs x 25 bots" 25 --docs 20 --bots-per-doc 25 --rate 1 --duration 5 --ramp 2 --storm --quiet 30

{
  echo "# Load scenarios: latest results"
  echo
  echo "Run by \`load_tests/run-scenarios.sh$([ $quick = 1 ] && echo ' --quick')$([ -n "$threads" ] && echo " --threads $threads")\` on $(date -u +%Y-%m-%d), $machine;"
  echo "weft-server (Release, SQLite persistence on$([ -n "$threads" ] && echo ", --threads $threads")) and weft-bots on the same machine, over 127.0.0.1."
  echo "Latency: from the time a keystroke was scheduled (each bot types on a schedule fixed in advance; overdue"
  echo "keystrokes are sent at once and still measured from their scheduled times) until every other bot of the"
  echo "document has applied its op; every op sent gets a sample unless it never arrived. Max schedule lag: how far"
  echo "behind schedule a bot ran a keystroke. Server CPU: utime+stime of weft-server from /proc over the typing"
  echo "phase; bots CPU: the weft-bots process, same window. Loopback floor: weft-loopback-floor with as many peers as"
  echo "the scenario has bots per document (median of 3), the kernel's CPU per keystroke for any server over 127.0.0.1."
  echo
  echo "| scenario | connections | s | keystrokes | ops sent / with latency / never arrived | latency p50 / p95 / p99 / max ms | max schedule lag ms | server CPU µs/keystroke (% of a core) | loopback floor µs/keystroke | server CPU ÷ floor | bots CPU µs/keystroke (% of a core) | server peak RSS (RSS added per connection) | storm resync | errors / disconnects | converged |"
  echo "|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---|---|---|---|"
  cat "$rows"
} > "$out"
cat "$out"
