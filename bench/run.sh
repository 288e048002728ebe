#!/usr/bin/env bash
# Interleaved pgbench comparison: direct to the primary, through Sluice (pooler only, routing
# without a standby to use, load balanced over primary + standby), and through PgBouncer and
# pgpool-II when installed (Debian packages pgbouncer, pgpool2), round by round so that the
# machine's drift hits every target alike. Prints TPS, mean latency and the ratio to direct, then
# Sluice's RSS with 1,000 idle clients.
#
#   bash bench/run.sh            (npm run bench builds first)
#   DURATION=10 ROUNDS=2 SCALE=10 IDLE_CLIENTS=1000 bash bench/run.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$root/scripts/pg-env.sh"
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
SCALE=${SCALE:-10}
IDLE_CLIENTS=${IDLE_CLIENTS:-1000}
# How the proxies reach PostgreSQL: its Unix-domain socket (socket: how a pooler on the database
# host is usually set up) or loopback TCP (tcp: as a pooler on its own host would, minus the wire).
BACKEND=${BACKEND:-tcp}
# Subsets, for a quick look: e.g. TARGETS="direct sluice pgbouncer" WORKLOADS="select-simple".
TARGETS=${TARGETS:-}
WORKLOADS=${WORKLOADS:-}
# Transaction mode: sluice-tx and pgbouncer-tx lend connections per transaction from a pool of
# TX_POOL_SIZE; the tx-* workloads (200 and 100 clients) run on them and direct only. TX_IDLE_CLIENTS
# idle clients measure sluice-tx's memory (they hold no server connection).
TX_POOL_SIZE=${TX_POOL_SIZE:-20}
TX_IDLE_CLIENTS=${TX_IDLE_CLIENTS:-10000}
# Another Node.js for the same build and floor (targets sluice-alt and node-floor-alt), e.g. the
# current LTS installed for the bench only:
#   npm install --prefix /tmp/node-lts node@24 && NODE_ALT=/tmp/node-lts/node_modules/.bin/node bash bench/run.sh
NODE_ALT=${NODE_ALT:-}
# Bun, for a second floor on its own sockets (target bun-floor: bench/bun-floor.mjs), e.g.
#   npm install --prefix /tmp/bun-rt bun && BUN=/tmp/bun-rt/node_modules/.bin/bun bash bench/run.sh
BUN=${BUN:-}
# A/B against another build: BASELINE_DIST=/path/to/its/dist adds the targets base-sluice,
# base-sluice-route, base-sluice-lb and base-sluice-tx, run by that build in the same rounds (build it from a
# worktree of the commit).
BASELINE_DIST=${BASELINE_DIST:-}

work=$(mktemp -d /tmp/sluice-bench.XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres: "$work"
pids=()
cleanup() {
  # PgBouncer and pgpool run under runuser, which does not pass signals on: stop them by the
  # pids they write themselves.
  for f in "$work/pgbouncer.pid" "$work/pgbouncer-tx.pid" "$work/pgpool.pid"; do
    [ -f "$f" ] && pids+=("$(tr -cd 0-9 <"$f")")
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
  bash "$root/scripts/cluster.sh" destroy "$work/cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
wait_port() { # port [log]
  for _ in $(seq 1 300); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "port $1 never opened" >&2
  [ -n "${2:-}" ] && tail -n 20 "$2" >&2
  return 1
}

base=$(free_port)
# A primary and one streaming standby: the standby serves the load-balanced runs.
max_clients=$((IDLE_CLIENTS > 200 ? IDLE_CLIENTS : 200))
# The idle clients hold a server connection each (session mode), beside what every target pools.
PG_FAST=1 PG_SOCKETS=1 PG_MAX_CONNECTIONS=$((max_clients + 400)) bash "$root/scripts/cluster.sh" create "$work/cluster" "$base" 1 >/dev/null
pgbench -i -q -s "$SCALE" -h 127.0.0.1 -p "$base" -U postgres postgres >/dev/null 2>&1
until [ "$(psql -h 127.0.0.1 -p $((base + 1)) -U postgres -Atc 'select count(*) from pgbench_branches' postgres 2>/dev/null)" = "$SCALE" ]; do sleep 0.2; done
declare -A port=([direct]=$base)
case $BACKEND in
  socket) backend_host=$work/cluster ;;
  tcp) backend_host=127.0.0.1 ;;
  *) echo "BACKEND must be socket or tcp, not $BACKEND" >&2; exit 2 ;;
esac

# Sluice three ways: one backend (the pooler alone); both nodes with weights 1:0 (every statement
# is classified and routed, but reads still land on the primary: the cost of routing alone);
# both nodes with weights 1:1 (reads really spread).
# Several Sluices at once: no PCP socket or HTTP port of their own (the defaults would collide).
admin_toml='pcp_listen_addresses = ""
pcp_socket_dir = ""
http_port = 0'
declare -A proc=()
start_sluice() { # name backends-toml [dist]
  port[$1]=$(free_port)
  printf 'listen_addresses = "127.0.0.1"\nport = %s\nnum_init_children = %s\nlog_min_messages = "warning"\n%s\n%s\n' \
    "${port[$1]}" $((max_clients + 16)) "$admin_toml" "$2" >"$work/$1.toml"
  node "${3:-$root/dist}/cli.js" -f "$work/$1.toml" >"$work/$1.log" 2>&1 &
  pids+=($!)
  proc[$1]=$!
  wait_port "${port[$1]}" "$work/$1.log"
}
node_toml() { printf '[[backend]]\nhostname = "%s"\nport = %s\nweight = %s\n' "$backend_host" "$1" "$2"; }
start_sluice sluice-route "$(node_toml "$base" 1; node_toml $((base + 1)) 0)"
start_sluice sluice-lb "$(node_toml "$base" 1; node_toml $((base + 1)) 1)"
start_sluice sluice-tx "$(printf 'pool_mode = "transaction"\ndefault_pool_size = %s\nmax_client_conn = %s\n' "$TX_POOL_SIZE" $((TX_IDLE_CLIENTS + 300)); node_toml "$base" 1)"
if [ -n "$BASELINE_DIST" ]; then
  start_sluice base-sluice "$(node_toml "$base" 1)" "$BASELINE_DIST"
  start_sluice base-sluice-route "$(node_toml "$base" 1; node_toml $((base + 1)) 0)" "$BASELINE_DIST"
  start_sluice base-sluice-lb "$(node_toml "$base" 1; node_toml $((base + 1)) 1)" "$BASELINE_DIST"
  start_sluice base-sluice-tx "$(printf 'pool_mode = "transaction"\ndefault_pool_size = %s\nmax_client_conn = %s\n' "$TX_POOL_SIZE" $((TX_IDLE_CLIENTS + 300)); node_toml "$base" 1)" "$BASELINE_DIST"
fi

port[sluice]=$(free_port)
cat >"$work/sluice.toml" <<TOML
listen_addresses = "127.0.0.1"
port = ${port[sluice]}
num_init_children = $((IDLE_CLIENTS + 16))
log_min_messages = "warning"
$admin_toml
[[backend]]
hostname = "$backend_host"
port = $base
TOML
node "$root/dist/cli.js" -f "$work/sluice.toml" >"$work/sluice.log" 2>&1 &
sluice_pid=$!
pids+=("$sluice_pid")
proc[sluice]=$sluice_pid
wait_port "${port[sluice]}" "$work/sluice.log"

# The floor of any Node.js proxy: Sluice's own socket reads and writes, with no protocol at all.
start_floor() { # name node-binary
  port[$1]=$(free_port)
  "$2" "$root/bench/node-floor.mjs" "${port[$1]}" "$backend_host" "$base" >"$work/$1.log" 2>&1 &
  pids+=($!)
  proc[$1]=$!
  wait_port "${port[$1]}" "$work/$1.log"
}
start_floor node-floor node
# The floor of a session pooler on Node.js (pgbench -C: a new client per transaction, server
# connections pooled): SSLRequest, startup, pooling and Terminate, and nothing else.
port[pool-floor]=$(free_port)
node "$root/bench/pool-floor.mjs" "${port[pool-floor]}" "$backend_host" "$base" >"$work/pool-floor.log" 2>&1 &
pids+=($!)
proc[pool-floor]=$!
wait_port "${port[pool-floor]}" "$work/pool-floor.log"
if [ -n "$BUN" ]; then
  port[bun-floor]=$(free_port)
  "$BUN" "$root/bench/bun-floor.mjs" "${port[bun-floor]}" "$backend_host" "$base" >"$work/bun-floor.log" 2>&1 &
  pids+=($!)
  proc[bun-floor]=$!
  wait_port "${port[bun-floor]}" "$work/bun-floor.log"
fi
if [ -n "$NODE_ALT" ]; then
  start_floor node-floor-alt "$NODE_ALT"
  port[sluice-alt]=$(free_port)
  sed "s/^port = ${port[sluice]}\$/port = ${port[sluice-alt]}/" "$work/sluice.toml" >"$work/sluice-alt.toml"
  "$NODE_ALT" "$root/dist/cli.js" -f "$work/sluice-alt.toml" >"$work/sluice-alt.log" 2>&1 &
  pids+=($!)
  proc[sluice-alt]=$!
  wait_port "${port[sluice-alt]}" "$work/sluice-alt.log"
fi

if command -v pgbouncer >/dev/null; then
  port[pgbouncer]=$(free_port)
  cat >"$work/pgbouncer.ini" <<INI
[databases]
postgres = host=$backend_host port=$base dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port[pgbouncer]}
auth_type = trust
auth_file = $work/userlist.txt
pool_mode = session
max_client_conn = 300
default_pool_size = 32
unix_socket_dir =
logfile = $work/pgbouncer.log
pidfile = $work/pgbouncer.pid
INI
  echo '"postgres" ""' >"$work/userlist.txt"
  # The same in transaction mode, with its prepared statement support on where it has one (1.21+;
  # Debian bookworm's 1.18 has none, and pgbench -M prepared fails through it).
  port[pgbouncer-tx]=$(free_port)
  prepared=''
  printf '1.21\n%s\n' "$(pgbouncer --version | awk 'NR == 1 {print $2}')" | sort -V -C && prepared='\nmax_prepared_statements = 200'
  sed -e "s/^listen_port = .*/listen_port = ${port[pgbouncer-tx]}/" -e 's/^pool_mode = .*/pool_mode = transaction/' \
    -e "s/^default_pool_size = .*/default_pool_size = $TX_POOL_SIZE$prepared/" \
    -e "s#pgbouncer\.\(log\|pid\)#pgbouncer-tx.\1#" "$work/pgbouncer.ini" >"$work/pgbouncer-tx.ini"
  chown postgres: "$work"/pgbouncer.ini "$work"/pgbouncer-tx.ini "$work"/userlist.txt 2>/dev/null || true
  run_pg pgbouncer "$work/pgbouncer.ini" >/dev/null 2>&1 &
  pids+=($!)
  run_pg pgbouncer "$work/pgbouncer-tx.ini" >/dev/null 2>&1 &
  pids+=($!)
  wait_port "${port[pgbouncer]}"
  wait_port "${port[pgbouncer-tx]}"
fi

pgpool_bin=$(command -v pgpool || true)
if [ -n "$pgpool_bin" ]; then
  port[pgpool]=$(free_port)
  cat >"$work/pgpool.conf" <<CONF
backend_clustering_mode = 'streaming_replication'
listen_addresses = '127.0.0.1'
port = ${port[pgpool]}
socket_dir = '$work'
pcp_listen_addresses = ''
pcp_port = $(free_port)
pcp_socket_dir = '$work'
backend_hostname0 = '$backend_host'
backend_port0 = $base
backend_weight0 = 1
backend_flag0 = 'ALWAYS_PRIMARY'
num_init_children = 32
max_pool = 4
sr_check_period = 0
health_check_period = 0
load_balance_mode = off
pid_file_name = '$work/pgpool.pid'
logdir = '$work'
log_min_messages = warning
CONF
  : >"$work/pcp.conf"
  chown postgres: "$work"/pgpool.conf "$work"/pcp.conf 2>/dev/null || true
  run_pg "$pgpool_bin" -n -f "$work/pgpool.conf" -F "$work/pcp.conf" >"$work/pgpool.log" 2>&1 &
  pids+=($!)
  wait_port "${port[pgpool]}"
fi

[ -f "$work/pgbouncer.pid" ] && proc[pgbouncer]=$(tr -cd 0-9 <"$work/pgbouncer.pid")
[ -f "$work/pgbouncer-tx.pid" ] && proc[pgbouncer-tx]=$(tr -cd 0-9 <"$work/pgbouncer-tx.pid")
[ -f "$work/pgpool.pid" ] && proc[pgpool]=$(tr -cd 0-9 <"$work/pgpool.pid")

# CPU time (user + system, in clock ticks) of a proxy: its process and, for pgpool, the children
# it forks per client. On a shared machine, TPS moves with whatever else runs (this VM's hosts
# steal up to half its CPU at times); CPU per transaction hardly does, so it is printed too.
tick_hz=$(getconf CLK_TCK)
cpu_ticks() { # main-pid
  local total=0 p
  for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    [ -r "/proc/$p/stat" ] && total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# Client connections the primary serves now (the poolers keep theirs open between runs).
server_conns() { psql -h 127.0.0.1 -p "$base" -U postgres -Atc "select count(*) - 1 from pg_stat_activity where backend_type = 'client backend' and datname = 'postgres'" postgres 2>/dev/null || echo 0; }

targets=()
for t in direct sluice sluice-alt base-sluice sluice-route base-sluice-route sluice-lb base-sluice-lb sluice-tx base-sluice-tx node-floor node-floor-alt pool-floor bun-floor pgbouncer pgbouncer-tx pgpool; do
  [ -n "${port[$t]:-}" ] || continue
  [ -z "$TARGETS" ] || [[ " $TARGETS " == *" $t "* ]] || continue
  targets+=("$t")
done
workloads=()
for w in "select-simple|-S -c 16 -j 2 -M simple" "select-extended|-S -c 16 -j 2 -M extended" "tpcb|-c 8 -j 2 -M simple" "select-connect|-S -C -c 8 -j 2" \
  "tx-select-prepared|-S -M prepared -c 200 -j 2" "tx-tpcb|-c 100 -j 2 -M simple"; do
  [ -z "$WORKLOADS" ] || [[ " $WORKLOADS " == *" ${w%%|*} "* ]] || continue
  workloads+=("$w")
done

results="$work/results.txt"
: >"$results"
for round in $(seq 1 "$ROUNDS"); do
  for w in "${workloads[@]}"; do
    name=${w%%|*}; flags=${w#*|}
    for target in "${targets[@]}"; do
      # The transaction-mode workloads: many clients, for the poolers that lend connections.
      [[ $name != tx-* || $target =~ ^(direct|sluice-tx|base-sluice-tx|pgbouncer-tx)$ ]] || continue
      conns_before=$(server_conns)
      before=$([ -n "${proc[$target]:-}" ] && cpu_ticks "${proc[$target]}" || echo 0)
      # shellcheck disable=SC2086
      out=$(pgbench -n $flags -T "$DURATION" -h 127.0.0.1 -p "${port[$target]}" -U postgres postgres 2>&1 || true)
      after=$([ -n "${proc[$target]:-}" ] && cpu_ticks "${proc[$target]}" || echo 0)
      tps=$(sed -nE 's/^tps = ([0-9.]+).*/\1/p' <<<"$out" | head -n 1)
      lat=$(sed -nE 's/^latency average = ([0-9.]+) ms/\1/p' <<<"$out")
      failed=$(sed -nE 's/^number of failed transactions: ([0-9]+).*/\1/p' <<<"$out")
      txs=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' <<<"$out")
      # Proxy CPU per transaction in µs (0 for direct: there is no proxy).
      cpu=$(awk -v d=$((after - before)) -v hz="$tick_hz" -v n="${txs:-0}" 'BEGIN { printf "%.1f", (n > 0 ? d * 1e6 / hz / n : 0) }')
      echo "$name $target ${tps:-0} ${lat:-0} ${failed:-?} $cpu" >>"$results"
      conns_after=$(server_conns)
      echo "round $round $name $target: ${tps:-0} tps, ${lat:-?} ms, failed ${failed:-?}, proxy CPU ${cpu} µs/tx, server connections opened $((conns_after - conns_before)) (all targets hold $conns_after)" >&2
    done
  done
done

echo
echo "pgbench scale $SCALE, $DURATION s per run, $ROUNDS interleaved rounds, PostgreSQL $("$PG_BINDIR/postgres" --version | awk '{print $3}'), fsync off, proxies to PostgreSQL over $BACKEND, Node.js $(node --version)${NODE_ALT:+ (the -alt targets: $("$NODE_ALT" --version))}${BUN:+, Bun $("$BUN" --version)}"
awk '
  { key=$1 SUBSEP $2; tps[key]+=$3; lat[key]+=$4; n[key]++; fail[key]+=$5; cpu[key]+=$6; if (!seen[$1]++) order[++nw]=$1; if (!tseen[$2]++) torder[++nt]=$2 }
  END {
    printf "| workload | target | TPS | latency ms | x direct | failed | proxy CPU µs/tx |\n|---|---|---|---|---|---|---|\n";
    for (i=1;i<=nw;i++) { w=order[i]; d=tps[w SUBSEP "direct"]/n[w SUBSEP "direct"];
      for (j=1;j<=nt;j++) { t=torder[j]; k=w SUBSEP t; if (!n[k]) continue;
        printf "| %s | %s | %.0f | %.3f | %.2f | %d | %s |\n", w, t, tps[k]/n[k], lat[k]/n[k], (tps[k]/n[k])/d, fail[k], (t == "direct" ? "-" : sprintf("%.1f", cpu[k]/n[k])) } } }' "$results"

# Sluice's memory with many idle clients (each holds a backend connection: session pooling).
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
before=$(rss "$sluice_pid")
read -r at_once settled < <(node "$root/bench/idle-clients.mjs" "${port[sluice]}" "$IDLE_CLIENTS" "$sluice_pid")
echo
# RSS before includes garbage left by the pgbench runs, so it can exceed the figures after.
echo "Sluice RSS: $((settled / 1024)) MiB with $IDLE_CLIENTS idle clients connected for 30 s ($((at_once / 1024)) MiB right after they connected; $((before / 1024)) MiB after the pgbench runs)"
if [ -n "${proc[sluice-tx]:-}" ] && [ "$TX_IDLE_CLIENTS" -gt 0 ]; then
  before=$(rss "${proc[sluice-tx]}")
  read -r at_once settled < <(node "$root/bench/idle-clients.mjs" "${port[sluice-tx]}" "$TX_IDLE_CLIENTS" "${proc[sluice-tx]}")
  echo "Sluice RSS in transaction mode: $((settled / 1024)) MiB with $TX_IDLE_CLIENTS idle clients on $TX_POOL_SIZE server connections, connected for 30 s ($(( (settled - before) / TX_IDLE_CLIENTS )) KiB each; $((at_once / 1024)) MiB right after they connected; $((before / 1024)) MiB before)"
fi
