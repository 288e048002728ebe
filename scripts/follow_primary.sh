#!/usr/bin/env bash
# follow_primary_command for nodes on this host: points standby %d at the new primary %m.
#   follow_primary_command = "/path/to/scripts/follow_primary.sh %d %h %p %D %m %H %M %P %r %R %N %S"
# Keeps the standby's application_name and replication slot (the slot is made on the new
# primary), changes host and port in primary_conninfo, reloads, and waits until it streams from
# the new primary. If it cannot (its WAL went past the new primary's fork), it is rewound with
# pg_rewind and restarted. A node that is not running is left alone. A node that is itself a
# primary (the old primary of a switchover, or after pcp_promote_node) is stopped, rewound and
# started as a standby of the new primary, with application_name and slot "node<id>" (the
# names scripts/cluster.sh gives; set FOLLOW_APPLICATION_NAME to change).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=pg-env.sh
. "$here/pg-env.sh"
# shellcheck source=standby-lib.sh
. "$here/standby-lib.sh"

node_id=$1 node_host=$2 node_port=$3 node_data=$4 primary_id=$5 primary_host=$6 old_primary_id=$8 primary_port=$9
user=${PGUSER:-postgres}

streaming() {
  [ "$(q "$node_host" "$node_port" "SELECT status = 'streaming' AND sender_port = $primary_port FROM pg_catalog.pg_stat_wal_receiver" 2>/dev/null)" = t ]
}
wait_streaming() {
  for _ in $(seq 1 "$1"); do streaming && return 0; sleep 0.2; done
  return 1
}
stop_node() { stop_server "$node_host" "$node_port"; }
start_standby() {
  run_pg touch "$node_data/standby.signal"
  run_pg "$PG_BINDIR/pg_ctl" -D "$node_data" -l "$node_data/../node$node_id.log" -w -t 60 start >/dev/null
}

# Stops the node if it runs, rewinds it to the new primary's timeline, and starts it as a
# standby (with the upstream in $1/$2 when given).
rewind_as_standby() {
  stop_node
  rewind_to_primary
  if [ -n "${1:-}" ]; then set_upstream "$1" "$2"; fi
  start_standby
}

# Makes a primary (running, or stopped cleanly by failover.sh) a standby of the new primary:
# started as one at once, which works when its last WAL reached the new primary before the
# promotion (failover.sh's clean stop); rewound with pg_rewind when it went past the fork.
follow_as_former_primary() {
  local app=${FOLLOW_APPLICATION_NAME:-node$node_id}
  local conninfo="host=$primary_host port=$primary_port user=$user application_name=$app"
  echo "node $node_id was a primary: making it a standby of node $primary_id"
  make_slot "$app"
  stop_node
  set_upstream "$conninfo" "$app"
  start_standby
  if ! wait_streaming 50; then
    echo "node $node_id does not stream from node $primary_id: rewinding it with pg_rewind"
    rewind_as_standby "$conninfo" "$app"
    wait_streaming 150 || { echo "node $node_id does not stream from node $primary_id" >&2; exit 1; }
  fi
  echo "node $node_id follows node $primary_id"
  exit 0
}

if ! "$PG_BINDIR/pg_isready" -q -h "$node_host" -p "$node_port"; then
  # The old primary of a switchover was stopped cleanly by failover.sh: it comes back as a
  # standby. A node that crashed, or any other node that is not running, is left alone.
  if [ "$node_id" = "$old_primary_id" ] && [ -d "$node_data" ] &&
    run_pg "$PG_BINDIR/pg_controldata" "$node_data" | grep '^Database cluster state: *shut down$' >/dev/null; then
    follow_as_former_primary
  fi
  echo "node $node_id is not running: not re-pointed"
  exit 0
fi
if [ "$(q "$node_host" "$node_port" "SELECT pg_catalog.pg_is_in_recovery()")" = f ]; then
  follow_as_former_primary
fi

conninfo=$(q "$node_host" "$node_port" "SHOW primary_conninfo")
slot=$(q "$node_host" "$node_port" "SHOW primary_slot_name")
new_conninfo=$(sed -E "s/(^| )host=[^ ]*/\1host=$primary_host/; s/(^| )port=[^ ]*/\1port=$primary_port/" <<<"$conninfo")
make_slot "$slot"
q "$node_host" "$node_port" "ALTER SYSTEM SET primary_conninfo = $(lit "$new_conninfo")"
q "$node_host" "$node_port" "SELECT pg_catalog.pg_reload_conf()" >/dev/null

if wait_streaming 50; then
  echo "node $node_id follows node $primary_id ($primary_host:$primary_port)"
  exit 0
fi

echo "node $node_id does not stream from node $primary_id: rewinding it with pg_rewind"
rewind_as_standby
if wait_streaming 150; then
  echo "node $node_id rewound and follows node $primary_id"
  exit 0
fi
echo "node $node_id still does not stream from node $primary_id" >&2
exit 1
