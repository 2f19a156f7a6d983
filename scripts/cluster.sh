#!/usr/bin/env bash
# Runs a local weft cluster: N weft-server nodes n1..nN on 127.0.0.1, ports
# BASE..BASE+N-1 (default 8081..), data under ./data/cluster/nI/, serving the
# editor (web_client/dist). Node I dials every node J < I (one link per pair
# carries both directions), all with the same --topology. Optionally runs
# weft-bots across every node. Ctrl-C stops every node. See --help.
#   scripts/cluster.sh --nodes 3 --topology ring
#   scripts/cluster.sh --nodes 3 --topology star --hub n2 --bots 4 --duration 20
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

usage() {
  cat <<'EOF'
usage: scripts/cluster.sh [flags] [-- weft-server flags]

Builds (Release) weft-server, weft-token, weft-bots and the web client, like
scripts/run.sh, then starts a cluster of N weft-server nodes on 127.0.0.1:
node nI listens on port BASE+I-1, keeps its data under ./data/cluster/nI/ (log:
./data/cluster/nI/weft-server.log), serves the editor from web_client/dist and
dials every node nJ with J < I (--peer ws://127.0.0.1:PORT). It prints every
node's editor URL and the cluster page, then waits; Ctrl-C (SIGINT or SIGTERM)
stops every node it started.

  --nodes N            nodes (default 3)
  --topology T         all, ring or star: passed to every node (default all)
  --hub NODE           the hub of --topology star (default n1)
  --base-port P        port of n1 (default 8081); nI gets P+I-1
  --bots N             once every node is up, run weft-bots with every node's URL:
                       N bots per document, spread over the nodes round robin
  --docs D             weft-bots documents (default 1)
  --rate K             weft-bots keystrokes per second per bot (default 5)
  --duration S         weft-bots seconds of typing (default 10)
  --exit-after-bots    stop the cluster after weft-bots and exit with its status
                       (default: print its summary and keep the cluster running)
  --fresh              delete ./data/cluster first
  --no-build           use the binaries and web_client/dist already built
  --help               this text

Arguments after -- go to every weft-server (e.g. -- --log-level debug).
EOF
}

nodes=3 topology=all hub="" base_port=8081 bots=0 docs=1 rate=5 duration=10
exit_after_bots=0 fresh=0 build=1
server_args=()
die() { echo "cluster.sh: $*" >&2; exit 2; }
need_value() { [ "$#" -ge 2 ] || die "$1 needs a value"; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_num() { [[ "$1" =~ ^[0-9]+([.][0-9]+)?$ ]]; }
while [ "$#" -gt 0 ]; do
  case "$1" in
    --nodes) need_value "$@"; nodes=$2; shift 2 ;;
    --topology) need_value "$@"; topology=$2; shift 2 ;;
    --hub) need_value "$@"; hub=$2; shift 2 ;;
    --base-port) need_value "$@"; base_port=$2; shift 2 ;;
    --bots) need_value "$@"; bots=$2; shift 2 ;;
    --docs) need_value "$@"; docs=$2; shift 2 ;;
    --rate) need_value "$@"; rate=$2; shift 2 ;;
    --duration) need_value "$@"; duration=$2; shift 2 ;;
    --exit-after-bots) exit_after_bots=1; shift ;;
    --fresh) fresh=1; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; server_args=("$@"); break ;;
    *) echo "cluster.sh: unknown flag $1" >&2; usage >&2; exit 2 ;;
  esac
done
{ is_uint "$nodes" && [ "$nodes" -ge 1 ]; } || die "--nodes wants a number >= 1, not '$nodes'"
case "$topology" in all|ring|star) ;; *) die "--topology wants all, ring or star, not '$topology'" ;; esac
{ is_uint "$base_port" && [ "$base_port" -ge 1 ] && [ $((base_port + nodes - 1)) -le 65535 ]; } ||
  die "--base-port wants a port such that $nodes nodes fit below 65536, not '$base_port'"
is_uint "$bots" || die "--bots wants a number, not '$bots'"
{ is_uint "$docs" && [ "$docs" -ge 1 ]; } || die "--docs wants a number >= 1, not '$docs'"
is_num "$rate" || die "--rate wants a number, not '$rate'"
is_num "$duration" || die "--duration wants a number, not '$duration'"
if [ "$topology" = star ]; then
  hub=${hub:-n1}
  { [[ "$hub" =~ ^n([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 1 ] && [ "${BASH_REMATCH[1]}" -le "$nodes" ]; } ||
    die "--hub wants one of n1..n$nodes, not '$hub'"
elif [ -n "$hub" ]; then
  die "--hub is for --topology star"
fi
if [ "$exit_after_bots" = 1 ] && [ "$bots" -eq 0 ]; then die "--exit-after-bots needs --bots N"; fi

port_of() { echo $((base_port + $1 - 1)); }

# Refuse ports already taken (another cluster, a scripts/run.sh server):
# the node would fail to bind, and its peers would link to the wrong server.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for i in $(seq 1 "$nodes"); do
  if port_open "$(port_of "$i")"; then die "port $(port_of "$i") (for n$i) is in use; try --base-port"; fi
done

if [ "$build" = 1 ]; then
  weft_install_packages "${WEFT_APT_PACKAGES[@]}"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j "$(weft_jobs)" --target weft-server weft-token weft-bots
  weft_build_web_client
fi
server_bin=build/weft-server bots_bin=build/load_tests/weft-bots
[ -x "$server_bin" ] || die "$server_bin is missing (run without --no-build)"
if [ "$bots" -gt 0 ] && [ ! -x "$bots_bin" ]; then die "$bots_bin is missing (run without --no-build)"; fi

# A minimal HTTP GET over bash's /dev/tcp (no curl needed), at most 3 s:
# prints the body.
http_get() {  # port path
  local response
  # shellcheck disable=SC2016  # $0 and $1 are the inner shell's
  response=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$1" >&3 && cat <&3' \
               "$1" "$2" 2>/dev/null) || return 1
  printf '%s\n' "${response#*$'\r\n\r\n'}"
}

[ "$fresh" = 1 ] && rm -rf ./data/cluster
pids=()
bots_pid=""
stopping=0
stop_nodes() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap '' INT TERM
  if [ -n "$bots_pid" ] && kill -0 "$bots_pid" 2>/dev/null; then
    kill -TERM "$bots_pid" 2>/dev/null || true   # timeout passes it on to weft-bots
    wait "$bots_pid" 2>/dev/null || true
  fi
  local live=() p
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && live+=("$p"); done
  [ "${#live[@]}" -eq 0 ] && return
  echo "cluster.sh: stopping ${#live[@]} nodes" >&2
  kill -TERM "${pids[@]}" 2>/dev/null || true
  # weft-server shuts down cleanly on SIGTERM; give it 10 s, then SIGKILL.
  for _ in $(seq 1 100); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      echo "cluster.sh: pid $p did not stop on SIGTERM; killing it" >&2
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
  wait "${pids[@]}" 2>/dev/null || true
  echo "cluster.sh: all nodes stopped" >&2
}
trap 'stop_nodes; exit 130' INT
trap 'stop_nodes; exit 143' TERM
trap 'stop_nodes' EXIT

for i in $(seq 1 "$nodes"); do
  dir=./data/cluster/n$i
  mkdir -p "$dir"
  args=(--bind 127.0.0.1 --port "$(port_of "$i")" --data-dir "$dir" --web-root web_client/dist
        --node-id "n$i" --topology "$topology")
  [ "$topology" = star ] && args+=(--hub "$hub")
  for j in $(seq 1 $((i - 1))); do args+=(--peer "ws://127.0.0.1:$(port_of "$j")"); done
  echo "cluster.sh: n$i: $server_bin ${args[*]} ${server_args[*]}" >&2
  "$server_bin" "${args[@]}" "${server_args[@]}" >>"$dir/weft-server.log" 2>&1 &
  pids+=("$!")
done

# Up: every node answers /healthz; linked: every node says "ok" (not
# "degraded: ..."), within 20 s.
deadline=$((SECONDS + 20))
for i in $(seq 1 "$nodes"); do
  until http_get "$(port_of "$i")" /healthz >/dev/null; do
    kill -0 "${pids[$((i - 1))]}" 2>/dev/null || die "n$i exited at start; see data/cluster/n$i/weft-server.log"
    [ "$SECONDS" -lt "$deadline" ] || die "n$i does not answer on port $(port_of "$i"); see data/cluster/n$i/weft-server.log"
    sleep 0.1
  done
done
all_ok=0
while [ "$SECONDS" -lt "$deadline" ]; do
  all_ok=1
  for i in $(seq 1 "$nodes"); do
    [ "$(http_get "$(port_of "$i")" /healthz)" = ok ] || all_ok=0
  done
  [ "$all_ok" = 1 ] && break
  sleep 0.2
done
for i in $(seq 1 "$nodes"); do
  echo "cluster.sh: n$i /healthz: $(http_get "$(port_of "$i")" /healthz | head -n 1)" >&2
done
[ "$all_ok" = 1 ] || echo "cluster.sh: warning: not every node is healthy yet (links still coming up?)" >&2

echo
echo "weft cluster: $nodes nodes, topology $topology${hub:+ (hub $hub)}, data under ./data/cluster/"
for i in $(seq 1 "$nodes"); do
  echo "  n$i: editor http://127.0.0.1:$(port_of "$i")/   (pid ${pids[$((i - 1))]}, log data/cluster/n$i/weft-server.log)"
done
echo "  cluster page: http://127.0.0.1:$(port_of 1)/cluster   (links: GET /api/cluster on any node)"
echo

if [ "$bots" -gt 0 ]; then
  urls=()
  for i in $(seq 1 "$nodes"); do urls+=(--url "ws://127.0.0.1:$(port_of "$i")/"); done
  # Fresh documents and replica ids every run (the data stays between runs):
  # the seed names both.
  bots_cmd=("$bots_bin" "${urls[@]}" --docs "$docs" --bots-per-doc "$bots" --rate "$rate"
            --duration "$duration" --quiet 10 --seed "$(date +%s)" --no-progress)
  echo "cluster.sh: ${bots_cmd[*]}" >&2
  # Bounded: the typing, connecting and at most 10 s for convergence, with
  # margin. In the background, so that Ctrl-C is handled at once.
  timeout $(( ${duration%.*} + 90 )) "${bots_cmd[@]}" &
  bots_pid=$!
  bots_status=0
  wait "$bots_pid" || bots_status=$?
  bots_pid=""
  echo "cluster.sh: weft-bots exited with status $bots_status" >&2
  if [ "$exit_after_bots" = 1 ]; then
    stop_nodes
    exit "$bots_status"
  fi
fi

echo "Ctrl-C stops the cluster."
reported=()
while true; do
  for i in $(seq 1 "$nodes"); do
    if [ -z "${reported[$i]:-}" ] && ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
      reported[i]=1
      echo "cluster.sh: n$i (pid ${pids[$((i - 1))]}) exited; see data/cluster/n$i/weft-server.log" >&2
    fi
  done
  sleep 1 &
  wait $! || true   # returns at once on Ctrl-C, so the trap runs without delay
done
