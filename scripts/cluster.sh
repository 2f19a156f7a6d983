#!/usr/bin/env bash
# Runs a local weft cluster: N weft-server nodes n1..nN on 127.0.0.1, ports
# BASE..BASE+N-1 (default 8081..), data under ./data/cluster/nI/, serving the
# editor (web_client/dist). Node I dials every node J < I (one link per pair
# carries both directions), all with the same --topology. Optionally runs
# weft-bots across every node. Ctrl-C stops every node. See --help.
#   scripts/cluster.sh --nodes 3 --topology ring
#   scripts/cluster.sh --nodes 3 --topology star --hub n2 --bots 4 --duration 20
# With --region, one region scaled out instead: PostgreSQL, Redis, N nodes
# sharing them (--store, --bus) and haproxy in front, data under ./data/region/.
#   scripts/cluster.sh --region --nodes 3 --bots 2 --docs 4
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
stops every node it started. With --region it starts one region scaled out
instead (PostgreSQL, Redis, N nodes sharing them, haproxy in front): see below.

  --nodes N            nodes (default 3)
  --topology T         all, ring or star: passed to every node (default all; not
                       with --region)
  --hub NODE           the hub of --topology star (default n1)
  --base-port P        port of n1 (default 8081); nI gets P+I-1
  --bots N             once every node is up, run weft-bots with every node's URL:
                       N bots per document, spread over the nodes round robin
                       (with --region: the URLs that --bots-via says)
  --docs D             weft-bots documents (default 1)
  --rate K             weft-bots keystrokes per second per bot (default 5)
  --duration S         weft-bots seconds of typing (default 10)
  --exit-after-bots    stop the cluster after weft-bots and exit with its status
                       (default: print its summary and keep the cluster running)
  --fresh              delete ./data/cluster (with --region: ./data/region) first
  --no-build           use the binaries and web_client/dist already built
  --help               this text

Arguments after -- go to every weft-server (e.g. -- --log-level debug).

Regional mode (scale-out inside one region, docs/scale-out.md):

  --region             instead of peers, start one region: a PostgreSQL (initdb in
                       ./data/region/pg/, log ./data/region/pg/postgres.log; run as
                       the postgres user when this script runs as root), a Redis
                       (./data/region/redis/, no persistence: it is only the bus),
                       N nodes n1..nN with --store postgres://weft@127.0.0.1:PG/weft,
                       --bus redis://127.0.0.1:REDIS and all the same --node-id, the
                       region's name (docs/scale-out.md; logs ./data/region/nI/),
                       and haproxy in front (./data/region/haproxy.cfg; log of the
                       last run ./data/region/haproxy.log): round robin over the
                       nodes, WebSocket upgrades passed through with a 1 h tunnel
                       timeout, GET /healthz checked every second (a node is out
                       after 2 failed checks; a connection refused by a dead node
                       is retried on another one at once), stats on /haproxy-stats.
                       Installs haproxy, postgresql and redis-server with apt-get
                       when missing (also with --no-build).
  --region-name NAME   the --node-id of every node (default region)
  --lb-port P          the load balancer's port: the editor's URL (default 8080)
  --pg-port P          PostgreSQL's port (default 5433)
  --redis-port P       Redis's port (default 6380)
  --bots-via W         where weft-bots connect in this mode: lb (default: every bot
                       through the load balancer, one --url; a bot whose node dies
                       reconnects through it to another node), nodes (every node's
                       URL, bots spread round robin, failover to the next URL) or
                       both (the load balancer's and every node's URL)
  After weft-bots, every node is asked for the text of every bot document
  (GET /api/docs/ID/text) and the texts must be equal on all running nodes;
  with --exit-after-bots the exit status is weft-bots' status, or 1 if it
  passed but the nodes' texts differ.
  Ctrl-C stops, in this order: weft-bots, haproxy, the nodes, Redis, PostgreSQL
  (pg_ctl stop -m fast). The data stays for the next run (--fresh deletes it).
EOF
}

nodes=3 topology=all hub="" base_port=8081 bots=0 docs=1 rate=5 duration=10
exit_after_bots=0 fresh=0 build=1
region=0 region_name=region lb_port=8080 pg_port=5433 redis_port=6380 bots_via=lb topology_set=0 region_only=""
server_args=()
die() { echo "cluster.sh: $*" >&2; exit 2; }
need_value() { [ "$#" -ge 2 ] || die "$1 needs a value"; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
is_num() { [[ "$1" =~ ^[0-9]+([.][0-9]+)?$ ]]; }
while [ "$#" -gt 0 ]; do
  case "$1" in
    --nodes) need_value "$@"; nodes=$2; shift 2 ;;
    --topology) need_value "$@"; topology=$2; topology_set=1; shift 2 ;;
    --hub) need_value "$@"; hub=$2; shift 2 ;;
    --base-port) need_value "$@"; base_port=$2; shift 2 ;;
    --bots) need_value "$@"; bots=$2; shift 2 ;;
    --docs) need_value "$@"; docs=$2; shift 2 ;;
    --rate) need_value "$@"; rate=$2; shift 2 ;;
    --duration) need_value "$@"; duration=$2; shift 2 ;;
    --exit-after-bots) exit_after_bots=1; shift ;;
    --fresh) fresh=1; shift ;;
    --no-build) build=0; shift ;;
    --region) region=1; shift ;;
    --lb-port) need_value "$@"; lb_port=$2; region_only=$1; shift 2 ;;
    --pg-port) need_value "$@"; pg_port=$2; region_only=$1; shift 2 ;;
    --redis-port) need_value "$@"; redis_port=$2; region_only=$1; shift 2 ;;
    --bots-via) need_value "$@"; bots_via=$2; region_only=$1; shift 2 ;;
    --region-name) need_value "$@"; region_name=$2; region_only=$1; shift 2 ;;
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
if [ "$region" = 1 ]; then
  { [ "$topology_set" = 0 ] && [ -z "$hub" ]; } ||
    die "--topology and --hub are for peer links between regions, not for --region (nodes share PostgreSQL and Redis)"
  for p in "$lb_port" "$pg_port" "$redis_port"; do
    { is_uint "$p" && [ "$p" -ge 1 ] && [ "$p" -le 65535 ]; } || die "--lb-port, --pg-port and --redis-port want a port, not '$p'"
  done
  case "$bots_via" in lb|nodes|both) ;; *) die "--bots-via wants lb, nodes or both, not '$bots_via'" ;; esac
  [[ "$region_name" =~ ^[A-Za-z0-9._-]+$ ]] || die "--region-name wants letters, digits, - _ or ., not '$region_name'"
  # Every port once: the LB, PostgreSQL, Redis and the nodes'.
  taken=" $lb_port "
  for p in "$pg_port" "$redis_port" $(seq "$base_port" $((base_port + nodes - 1))); do
    [[ "$taken" == *" $p "* ]] && die "port $p is given twice (--lb-port, --pg-port, --redis-port, --base-port..+N-1 must differ)"
    taken+="$p "
  done
elif [ -n "$region_only" ]; then
  die "$region_only is for --region"
fi
data_root=./data/cluster
[ "$region" = 1 ] && data_root=./data/region

port_of() { echo $((base_port + $1 - 1)); }

# Refuse ports already taken (another cluster, a scripts/run.sh server):
# the node would fail to bind, and its peers would link to the wrong server.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for i in $(seq 1 "$nodes"); do
  if port_open "$(port_of "$i")"; then die "port $(port_of "$i") (for n$i) is in use; try --base-port"; fi
done
if [ "$region" = 1 ]; then
  port_open "$lb_port" && die "port $lb_port (for the load balancer) is in use; try --lb-port"
  port_open "$pg_port" && die "port $pg_port (for PostgreSQL) is in use; try --pg-port (a PostgreSQL left from an earlier run: runuser -u postgres -- /usr/lib/postgresql/*/bin/pg_ctl -D $PWD/data/region/pg/data stop -m fast)"
  port_open "$redis_port" && die "port $redis_port (for Redis) is in use; try --redis-port"
  # Runtime parts of this mode, also with --no-build; apt-get only when missing.
  weft_install_packages haproxy postgresql redis-server
fi

if [ "$build" = 1 ]; then
  weft_install_packages "${WEFT_APT_PACKAGES[@]}"
  weft_configure build -DCMAKE_BUILD_TYPE=Release
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

[ "$fresh" = 1 ] && rm -rf "$data_root"
pids=()
bots_pid=""
lb_pid="" redis_pid="" pg_started=0
stopping=0
stop_nodes() {
  local live=() p
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && live+=("$p"); done
  [ "${#live[@]}" -eq 0 ] && return 0   # 0: in a trap, a bare return gives the interrupted command's status
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
# Stops one process this script started: SIGTERM, up to `secs` s, then SIGKILL.
stop_child() {  # name pid secs
  local name=$1 pid=$2 secs=$3
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  echo "cluster.sh: stopping $name (pid $pid)" >&2
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((secs * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "cluster.sh: $name (pid $pid) did not stop on SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
# PostgreSQL refuses to run as root: then initdb, pg_ctl and postgres run as
# the postgres user (the Debian package makes it). pg_ctl starts postgres in
# a session of its own and stops it by its pid file, so no signal has to pass
# through runuser.
pg_as() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
stop_postgres() {
  [ "$pg_started" = 1 ] || return 0
  pg_started=0
  [ -f "$pg_data/postmaster.pid" ] || return 0
  echo "cluster.sh: stopping PostgreSQL (pg_ctl stop -m fast)" >&2
  if ! pg_as "$pg_bin/pg_ctl" -D "$pg_data" stop -m fast -w -t 30 >/dev/null 2>&1; then
    local pid
    pid=$(head -n 1 "$pg_data/postmaster.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      echo "cluster.sh: pg_ctl stop failed; sending SIGQUIT to postgres (pid $pid)" >&2
      kill -QUIT "$pid" 2>/dev/null || true
    fi
  fi
}
stop_all() {
  [ "$stopping" = 1 ] && return 0
  stopping=1
  trap '' INT TERM
  if [ -n "$bots_pid" ] && kill -0 "$bots_pid" 2>/dev/null; then
    kill -TERM "$bots_pid" 2>/dev/null || true   # timeout passes it on to weft-bots
    wait "$bots_pid" 2>/dev/null || true
  fi
  if [ "$region" = 1 ]; then
    # Front to back: no new connections, then the nodes (they commit what
    # they hold), then the bus and the store they still talk to until then.
    stop_child haproxy "$lb_pid" 5
    stop_nodes
    stop_child Redis "$redis_pid" 10
    stop_postgres
    echo "cluster.sh: region stopped (data stays in $data_root/)" >&2
  else
    stop_nodes
  fi
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

if [ "$region" = 1 ]; then
  region_dir=$PWD/data/region
  mkdir -p "$region_dir"

  # PostgreSQL: initdb once (the data stays between runs), then pg_ctl start.
  pg_bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  { [ -n "$pg_bin" ] && [ -x "$pg_bin/postgres" ]; } || die "PostgreSQL is not installed under /usr/lib/postgresql (apt-get install postgresql)"
  pg_dir=$region_dir/pg pg_data=$region_dir/pg/data
  mkdir -p "$pg_dir"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "no postgres user to run PostgreSQL as (the postgresql package makes it)"
    chown postgres:postgres "$pg_dir"
    [ -d "$pg_data" ] && chown -R postgres:postgres "$pg_data"
  fi
  if [ ! -s "$pg_data/PG_VERSION" ]; then
    rm -rf "$pg_data"   # a half-made one from an interrupted run
    echo "cluster.sh: initdb $pg_data" >&2
    pg_as "$pg_bin/initdb" -D "$pg_data" -A trust -U weft -E UTF8 >"$pg_dir/initdb.log" 2>&1 ||
      die "initdb failed; see data/region/pg/initdb.log"
  fi
  pg_started=1
  # Only TCP on 127.0.0.1 (no Unix socket, so the path's length does not matter).
  pg_as "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_dir/postgres.log" -w -t 60 \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200" start >/dev/null ||
    die "PostgreSQL did not start; see data/region/pg/postgres.log"
  psql_cmd=("$pg_bin/psql" -X -q -h 127.0.0.1 -p "$pg_port" -U weft)
  if [ "$("${psql_cmd[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'weft'")" != 1 ]; then
    "${psql_cmd[@]}" -d postgres -c "CREATE DATABASE weft" || die "cannot create the database weft"
  fi
  store_uri="postgres://weft@127.0.0.1:$pg_port/weft"
  echo "cluster.sh: PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on $store_uri (data data/region/pg/data)" >&2

  # Redis: only the bus (every entry is in PostgreSQL first), so no
  # persistence. In a session of its own, like haproxy below, so that a
  # Ctrl-C at the terminal reaches it only through stop_all, after the nodes.
  mkdir -p "$region_dir/redis"
  setsid redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$region_dir/redis" --save '' --appendonly no \
    --daemonize no >>"$region_dir/redis/redis.log" 2>&1 &
  redis_pid=$!
  redis_ping() { [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null)" = PONG ]; }
  deadline=$((SECONDS + 20))
  until redis_ping; do
    kill -0 "$redis_pid" 2>/dev/null || die "Redis exited at start; see data/region/redis/redis.log"
    [ "$SECONDS" -lt "$deadline" ] || die "Redis does not answer on port $redis_port; see data/region/redis/redis.log"
    sleep 0.1
  done
  bus_url="redis://127.0.0.1:$redis_port"
  echo "cluster.sh: Redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on $bus_url (pid $redis_pid)" >&2
fi

for i in $(seq 1 "$nodes"); do
  dir=$data_root/n$i
  mkdir -p "$dir"
  if [ "$region" = 1 ]; then
    args=(--bind 127.0.0.1 --port "$(port_of "$i")" --store "$store_uri" --bus "$bus_url" --web-root web_client/dist
          --node-id "$region_name")
  else
    args=(--bind 127.0.0.1 --port "$(port_of "$i")" --data-dir "$dir" --web-root web_client/dist
          --node-id "n$i" --topology "$topology")
    [ "$topology" = star ] && args+=(--hub "$hub")
    for j in $(seq 1 $((i - 1))); do args+=(--peer "ws://127.0.0.1:$(port_of "$j")"); done
  fi
  echo "cluster.sh: n$i: $server_bin ${args[*]} ${server_args[*]}" >&2
  "$server_bin" "${args[@]}" "${server_args[@]}" >>"$dir/weft-server.log" 2>&1 &
  pids+=("$!")
done

# Up: every node answers /healthz; linked: every node says "ok" (not
# "degraded: ..."), within 20 s.
deadline=$((SECONDS + 20))
for i in $(seq 1 "$nodes"); do
  until http_get "$(port_of "$i")" /healthz >/dev/null; do
    kill -0 "${pids[$((i - 1))]}" 2>/dev/null || die "n$i exited at start; see ${data_root#./}/n$i/weft-server.log"
    [ "$SECONDS" -lt "$deadline" ] || die "n$i does not answer on port $(port_of "$i"); see ${data_root#./}/n$i/weft-server.log"
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

if [ "$region" = 1 ]; then
  # haproxy in HTTP mode passes the WebSocket upgrade through (HTTP/1.1
  # Upgrade) and then holds the tunnel for `timeout tunnel`; weft-server pings
  # idle connections long before that.
  lb_cfg=$region_dir/haproxy.cfg
  {
    cat <<CFG
# Written by scripts/cluster.sh --region; rewritten at every start.
global
    log stdout format raw local0
    # maxconn: unset, so haproxy derives it from the open-files limit

defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 3s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 10s
    timeout tunnel 1h
    timeout client-fin 10s
    timeout server-fin 10s
    # A connection refused by a node that died is tried again on another
    # node at once (every retry may go elsewhere), before the health checks
    # have taken it out.
    retries 3
    option redispatch 1

frontend weft
    bind 127.0.0.1:$lb_port
    stats enable
    stats uri /haproxy-stats
    stats refresh 2s
    default_backend weft_nodes

backend weft_nodes
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host 127.0.0.1
    http-check expect status 200
    default-server check inter 1s fall 2 rise 2
CFG
    for i in $(seq 1 "$nodes"); do echo "    server n$i 127.0.0.1:$(port_of "$i")"; done
  } >"$lb_cfg"
  haproxy -c -f "$lb_cfg" >"$region_dir/haproxy-check.log" 2>&1 ||
    die "haproxy refuses data/region/haproxy.cfg; see data/region/haproxy-check.log"
  echo "cluster.sh: haproxy -f $lb_cfg -db" >&2
  # A new log every run: haproxy sets its stdout non-blocking, which drops
  # O_APPEND, so it would write over an old log from its start.
  setsid haproxy -f "$lb_cfg" -db >"$region_dir/haproxy.log" 2>&1 &
  lb_pid=$!
  # Up when every node is UP in its stats (CSV field 18).
  lb_up() {
    local csv
    csv=$(http_get "$lb_port" '/haproxy-stats;csv') || return 1
    [ "$(printf '%s\n' "$csv" | awk -F, '$1 == "weft_nodes" && $2 ~ /^n[0-9]+$/ && $18 == "UP"' | wc -l)" -eq "$nodes" ]
  }
  deadline=$((SECONDS + 20))
  until lb_up; do
    kill -0 "$lb_pid" 2>/dev/null || die "haproxy exited at start; see data/region/haproxy.log"
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "cluster.sh: warning: haproxy does not see every node UP yet (see http://127.0.0.1:$lb_port/haproxy-stats)" >&2
      break
    fi
    sleep 0.2
  done
  echo "cluster.sh: load balancer /healthz: $(http_get "$lb_port" /healthz | head -n 1)" >&2

  echo
  echo "weft region $region_name: $nodes nodes (--node-id $region_name) sharing PostgreSQL and Redis, behind haproxy; data under ./data/region/"
  echo "  editor (through the load balancer): http://127.0.0.1:$lb_port/   (haproxy pid $lb_pid, log data/region/haproxy.log)"
  echo "  load balancer stats: http://127.0.0.1:$lb_port/haproxy-stats"
  for i in $(seq 1 "$nodes"); do
    echo "  n$i: http://127.0.0.1:$(port_of "$i")/   (pid ${pids[$((i - 1))]}, log data/region/n$i/weft-server.log, metrics /metrics)"
  done
  echo "  PostgreSQL: $store_uri   (data data/region/pg/data, log data/region/pg/postgres.log)"
  echo "  Redis: $bus_url   (pid $redis_pid, log data/region/redis/redis.log)"
  echo "  stop: Ctrl-C here (or kill -TERM $$): haproxy, the nodes, Redis, then PostgreSQL"
  echo
else
  echo
  echo "weft cluster: $nodes nodes, topology $topology${hub:+ (hub $hub)}, data under ./data/cluster/"
  for i in $(seq 1 "$nodes"); do
    echo "  n$i: editor http://127.0.0.1:$(port_of "$i")/   (pid ${pids[$((i - 1))]}, log data/cluster/n$i/weft-server.log)"
  done
  echo "  cluster page: http://127.0.0.1:$(port_of 1)/cluster   (links: GET /api/cluster on any node)"
  echo
fi

# The text of a document on a node: "cksum bytes" of the body of a 200
# answer, or nothing (status 1) when the node does not answer with 200.
text_sum() {  # port doc
  local response
  # shellcheck disable=SC2016
  response=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$1" >&3 && cat <&3 && printf x' \
               "$1" "/api/docs/$2/text" 2>/dev/null) || return 1
  [[ "$response" == "HTTP/1."?" 200 "* ]] || return 1
  response=${response#*$'\r\n\r\n'}
  printf '%s' "${response%x}" | cksum
}
# Every running node gives the same text for every bot document (within
# 10 s: a node reads the others' batches from Redis, or loads from
# PostgreSQL a document it has not open). Prints one line per document.
nodes_agree() {  # seed
  local d doc i sum first ok=1 ok_doc line deadline=$((SECONDS + 10))
  for d in $(seq 0 $((docs - 1))); do
    doc="bots-$1-$d"
    while true; do
      first="" line="" ok_doc=1
      for i in $(seq 1 "$nodes"); do
        if ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then line+=" n$i:down"; continue; fi
        if ! sum=$(text_sum "$(port_of "$i")" "$doc"); then line+=" n$i:no-answer"; ok_doc=0; continue; fi
        line+=" n$i:$(echo "$sum" | awk '{print $2 "B/cksum " $1}')"
        if [ -z "$first" ]; then first=$sum; elif [ "$sum" != "$first" ]; then ok_doc=0; fi
      done
      [ -n "$first" ] || ok_doc=0
      { [ "$ok_doc" = 1 ] || [ "$SECONDS" -ge "$deadline" ]; } && break
      sleep 0.5
    done
    echo "cluster.sh: $doc on every node: $([ "$ok_doc" = 1 ] && echo same text || echo DIFFERENT)  [$line ]" >&2
    [ "$ok_doc" = 1 ] || ok=0
  done
  [ "$ok" = 1 ]
}

if [ "$bots" -gt 0 ]; then
  urls=()
  if [ "$region" = 1 ]; then
    case "$bots_via" in lb|both) urls+=(--url "ws://127.0.0.1:$lb_port/") ;; esac
    case "$bots_via" in nodes|both) for i in $(seq 1 "$nodes"); do urls+=(--url "ws://127.0.0.1:$(port_of "$i")/"); done ;; esac
  else
    for i in $(seq 1 "$nodes"); do urls+=(--url "ws://127.0.0.1:$(port_of "$i")/"); done
  fi
  # Fresh documents and replica ids every run (the data stays between runs):
  # the seed names both.
  seed=$(date +%s)
  bots_cmd=("$bots_bin" "${urls[@]}" --docs "$docs" --bots-per-doc "$bots" --rate "$rate"
            --duration "$duration" --quiet 10 --seed "$seed" --no-progress)
  echo "cluster.sh: ${bots_cmd[*]}" >&2
  # Bounded: the typing, connecting and at most 10 s for convergence, with
  # margin. In the background, so that Ctrl-C is handled at once.
  timeout $(( ${duration%.*} + 90 )) "${bots_cmd[@]}" &
  bots_pid=$!
  bots_status=0
  wait "$bots_pid" || bots_status=$?
  bots_pid=""
  echo "cluster.sh: weft-bots exited with status $bots_status" >&2
  if [ "$region" = 1 ]; then
    # weft-bots compared the bots with the text at its URLs; through the
    # load balancer that is one node per request. Ask every node.
    nodes_ok=0
    nodes_agree "$seed" && nodes_ok=1
    if [ "$nodes_ok" = 0 ] && [ "$bots_status" = 0 ]; then bots_status=1; fi
  fi
  if [ "$exit_after_bots" = 1 ]; then
    stop_all
    exit "$bots_status"
  fi
fi

if [ "$region" = 1 ]; then
  echo "Ctrl-C stops the region (haproxy, nodes, Redis, PostgreSQL)."
else
  echo "Ctrl-C stops the cluster."
fi
reported=()
while true; do
  for i in $(seq 1 "$nodes"); do
    if [ -z "${reported[$i]:-}" ] && ! kill -0 "${pids[$((i - 1))]}" 2>/dev/null; then
      reported[i]=1
      echo "cluster.sh: n$i (pid ${pids[$((i - 1))]}) exited; see ${data_root#./}/n$i/weft-server.log" >&2
    fi
  done
  if [ "$region" = 1 ]; then
    if [ -z "${reported_lb:-}" ] && ! kill -0 "$lb_pid" 2>/dev/null; then
      reported_lb=1; echo "cluster.sh: haproxy (pid $lb_pid) exited; see data/region/haproxy.log" >&2
    fi
    if [ -z "${reported_redis:-}" ] && ! kill -0 "$redis_pid" 2>/dev/null; then
      reported_redis=1; echo "cluster.sh: Redis (pid $redis_pid) exited; see data/region/redis/redis.log" >&2
    fi
    if [ -z "${reported_pg:-}" ] && [ ! -f "$pg_data/postmaster.pid" ]; then
      reported_pg=1; echo "cluster.sh: PostgreSQL exited; see data/region/pg/postgres.log" >&2
    fi
  fi
  sleep 1 &
  wait $! || true   # returns at once on Ctrl-C, so the trap runs without delay
done
