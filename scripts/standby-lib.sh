# shellcheck shell=bash
# Sourced by follow_primary.sh and recovery_1st_stage.sh (after pg-env.sh): making a data
# directory a standby of a primary on this host. Callers set: user (the PostgreSQL user),
# node_data (the standby's data directory), primary_host, primary_port.

q() { "$PG_BINDIR/psql" -X -q -A -t -h "$1" -p "$2" -U "$user" -d postgres -c "$3"; }
lit() { printf "'%s'" "${1//\'/\'\'}"; }

# The standby's replication slot on the primary (kept if it exists).
make_slot() {
  [ -n "$1" ] || return 0
  q "$primary_host" "$primary_port" "SELECT pg_catalog.pg_create_physical_replication_slot($(lit "$1"), true) WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $(lit "$1"))" >/dev/null
}

# Where the node streams from: primary_conninfo $1 and primary_slot_name $2 in its auto.conf.
set_upstream() {
  run_pg touch "$node_data/postgresql.auto.conf"
  run_pg sed -i -E '/^(primary_conninfo|primary_slot_name) /d' "$node_data/postgresql.auto.conf"
  printf "primary_conninfo = %s\nprimary_slot_name = %s\n" "$(lit "$1")" "$(lit "$2")" | run_pg tee -a "$node_data/postgresql.auto.conf" >/dev/null
  run_pg touch "$node_data/standby.signal"
}

# Stops the node's server if it runs (host $1, port $2).
stop_server() {
  if "$PG_BINDIR/pg_isready" -q -h "$1" -p "$2"; then
    run_pg "$PG_BINDIR/pg_ctl" -D "$node_data" -m fast -w -t 60 stop
  fi
}

# Rewinds the (stopped) node to the primary's timeline with pg_rewind. pg_rewind copies the
# source's configuration files too, so the node's own are put back.
rewind_to_primary() {
  local keep status=0
  # pg_rewind reads the source's timeline from its control file, which a freshly promoted
  # server updates only at its next checkpoint (pg_rewind docs).
  q "$primary_host" "$primary_port" "CHECKPOINT"
  keep=$(run_pg mktemp -d)
  run_pg cp "$node_data/postgresql.conf" "$node_data/postgresql.auto.conf" "$keep/"
  run_pg "$PG_BINDIR/pg_rewind" -D "$node_data" --source-server="host=$primary_host port=$primary_port user=$user dbname=postgres" || status=$?
  run_pg cp "$keep/postgresql.conf" "$keep/postgresql.auto.conf" "$node_data/"
  run_pg rm -rf "$keep"
  return "$status"
}

# A postmaster.pid left by a crash names a process that is gone, or a zombie not yet reaped
# (which PostgreSQL's own check takes for alive and then refuses to start): only then removed.
clear_stale_pid() {
  local f="$1/postmaster.pid" pid st
  [ -f "$f" ] || return 0
  pid=$(head -n 1 "$f")
  st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  if [ -z "$st" ] || [ "$st" = Z ] || [ "$st" = X ]; then run_pg rm -f "$f"; fi
}
