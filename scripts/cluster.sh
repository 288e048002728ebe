#!/usr/bin/env bash
# Local PostgreSQL cluster for the demo and the tests: one primary (node0) and N streaming replicas
# (node1..nodeN, made with pg_basebackup, each with its own replication slot), on consecutive ports.
#
#   cluster.sh create  DIR BASE_PORT [REPLICAS=2]   initdb + base backups + start everything
#   cluster.sh start   DIR [NODE]                   start all nodes, or one
#   cluster.sh stop    DIR [NODE]                   fast shutdown of all nodes, or one
#   cluster.sh status  DIR                          one line per node: id port running role
#   cluster.sh kill    DIR NODE                     kill -9 the node's postmaster (a crash)
#   cluster.sh promote DIR NODE                     pg_ctl promote, waits until it is primary
#   cluster.sh destroy DIR                          stop everything and remove DIR
#
# Environment: PG_BINDIR (else pg_config, else newest /usr/lib/postgresql/*/bin); PG_FAST=1 turns
# fsync off (tests); PG_MAX_CONNECTIONS (default 200).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=pg-env.sh
. "$here/pg-env.sh"

usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || usage
dir=$(realpath -m "$dir")

node_dir() { echo "$dir/node$1"; }
node_port() { echo $((BASE_PORT + $1)); }
load_env() {
  [ -f "$dir/cluster.env" ] || { echo "no cluster in $dir (run create first)" >&2; exit 1; }
  # shellcheck disable=SC1091
  . "$dir/cluster.env"
}
all_nodes() { seq 0 "$REPLICAS"; }
psql_node() { "$PG_BINDIR/psql" -X -q -A -t -h 127.0.0.1 -p "$(node_port "$1")" -U postgres -d postgres "${@:2}"; }

# A killed postmaster can linger as a zombie until it is reaped, and kill -0 (what pg_ctl uses)
# still succeeds on a zombie: read the process state instead.
pid_alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

node_running() {
  local f; f="$(node_dir "$1")/postmaster.pid"
  [ -f "$f" ] && pid_alive "$(head -n 1 "$f")"
}

start_node() {
  local d; d=$(node_dir "$1")
  if node_running "$1"; then return 0; fi
  # A postmaster killed with -9 leaves its lock files; its pid may live on as a zombie that
  # nobody reaps here, which PostgreSQL would take for a running server.
  rm -f "$d/postmaster.pid" "$dir/.s.PGSQL.$(node_port "$1")" "$dir/.s.PGSQL.$(node_port "$1").lock"
  run_pg "$PG_BINDIR/pg_ctl" -D "$d" -l "$dir/node$1.log" -w -t 60 start >/dev/null
}

stop_node() {
  local d; d=$(node_dir "$1")
  if node_running "$1"; then
    run_pg "$PG_BINDIR/pg_ctl" -D "$d" -m fast -w -t 60 stop >/dev/null
  fi
  rm -f "$d/postmaster.pid"
}

node_conf() {
  cat <<EOF
# written by sluice scripts/cluster.sh
port = $(node_port "$1")
listen_addresses = '127.0.0.1'
# PG_SOCKETS=1: a Unix-domain socket in the cluster's folder too (backend_hostname = that
# folder). Off by default: a node killed with -9 leaves its socket's lock file there, and the
# scripts that start a recovered node do not know to remove it.
unix_socket_directories = '$([ "${PG_SOCKETS:-0}" = 1 ] && echo "$dir")'
max_connections = ${PG_MAX_CONNECTIONS:-200}
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
wal_keep_size = '256MB'
wal_log_hints = on
logging_collector = off
EOF
  if [ "${PG_FAST:-0}" = 1 ]; then printf 'fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n'; fi
}

create() {
  BASE_PORT=${3:?base port}; REPLICAS=${4:-2}
  if [ -e "$dir/cluster.env" ]; then echo "a cluster already exists in $dir" >&2; exit 1; fi
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  run_pg test -w "$dir" || { echo "$dir is not writable by the postgres user (is a parent folder private?)" >&2; exit 1; }
  printf 'BASE_PORT=%s\nREPLICAS=%s\n' "$BASE_PORT" "$REPLICAS" >"$dir/cluster.env"

  local p; p=$(node_dir 0)
  run_pg "$PG_BINDIR/initdb" -D "$p" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null
  node_conf 0 | run_pg tee -a "$p/postgresql.conf" >/dev/null
  # Everything local is trusted; tests that need md5 or SCRAM users prepend their own lines.
  printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n' | run_pg tee "$p/pg_hba.conf" >/dev/null
  start_node 0

  local i d
  for i in $(seq 1 "$REPLICAS"); do
    d=$(node_dir "$i")
    run_pg "$PG_BINDIR/pg_basebackup" -h 127.0.0.1 -p "$(node_port 0)" -U postgres -D "$d" \
      -X stream -C -S "node$i" --no-sync >/dev/null
    node_conf "$i" | run_pg tee -a "$d/postgresql.conf" >/dev/null
    printf "primary_conninfo = 'host=127.0.0.1 port=%s user=postgres application_name=node%s'\nprimary_slot_name = 'node%s'\n" \
      "$(node_port 0)" "$i" "$i" | run_pg tee -a "$d/postgresql.auto.conf" >/dev/null
    run_pg touch "$d/standby.signal"
    start_node "$i"
  done
  echo "cluster in $dir: primary on port $(node_port 0), $REPLICAS replicas on $(node_port 1)..$(node_port "$REPLICAS")"
}

status() {
  local i run role
  for i in $(all_nodes); do
    run=no; role=-
    if node_running "$i"; then
      run=yes
      case "$(psql_node "$i" -c 'select pg_is_in_recovery()' 2>/dev/null)" in
        t) role=standby ;; f) role=primary ;; *) role=unknown ;;
      esac
    fi
    echo "node$i port=$(node_port "$i") running=$run role=$role"
  done
}

case "$cmd" in
  create) create "$@" ;;
  start) load_env; if [ -n "${3:-}" ]; then start_node "$3"; else for i in $(all_nodes); do start_node "$i"; done; fi ;;
  stop) load_env; if [ -n "${3:-}" ]; then stop_node "$3"; else for i in $(all_nodes); do stop_node "$i"; done; fi ;;
  status) load_env; status ;;
  kill)
    load_env; n=${3:?node}
    node_running "$n" || { echo "node$n is not running" >&2; exit 1; }
    pid=$(head -n 1 "$(node_dir "$n")/postmaster.pid")
    kill -9 "$pid"
    for _ in $(seq 1 200); do pid_alive "$pid" || break; sleep 0.05; done
    ;;
  promote)
    load_env; n=${3:?node}
    run_pg "$PG_BINDIR/pg_ctl" -D "$(node_dir "$n")" -w -t 60 promote >/dev/null
    ;;
  destroy)
    if [ -f "$dir/cluster.env" ]; then load_env; for i in $(all_nodes); do stop_node "$i" || true; done; fi
    rm -rf "$dir"
    ;;
  *) usage ;;
esac
