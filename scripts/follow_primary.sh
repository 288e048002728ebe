#!/usr/bin/env bash
# follow_primary_command for nodes on this host: points standby %d at the new primary %m.
#   follow_primary_command = "/path/to/scripts/follow_primary.sh %d %h %p %D %m %H %M %P %r %R %N %S"
# Keeps the standby's application_name and replication slot (the slot is made on the new
# primary), changes host and port in primary_conninfo, reloads, and waits until it streams from
# the new primary. If it cannot (its WAL went past the new primary's fork), it is rewound with
# pg_rewind and restarted. A node that is not running is left alone.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=pg-env.sh
. "$here/pg-env.sh"

node_id=$1 node_host=$2 node_port=$3 node_data=$4 primary_id=$5 primary_host=$6 primary_port=$9
user=${PGUSER:-postgres}

q() { "$PG_BINDIR/psql" -X -q -A -t -h "$1" -p "$2" -U "$user" -d postgres -c "$3"; }
lit() { printf "'%s'" "${1//\'/\'\'}"; }

if ! "$PG_BINDIR/pg_isready" -q -h "$node_host" -p "$node_port"; then
  echo "node $node_id is not running: not re-pointed"
  exit 0
fi

conninfo=$(q "$node_host" "$node_port" "SHOW primary_conninfo")
slot=$(q "$node_host" "$node_port" "SHOW primary_slot_name")
new_conninfo=$(sed -E "s/(^| )host=[^ ]*/\1host=$primary_host/; s/(^| )port=[^ ]*/\1port=$primary_port/" <<<"$conninfo")
if [ -n "$slot" ]; then
  q "$primary_host" "$primary_port" "SELECT pg_catalog.pg_create_physical_replication_slot($(lit "$slot")) WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $(lit "$slot"))" >/dev/null
fi
q "$node_host" "$node_port" "ALTER SYSTEM SET primary_conninfo = $(lit "$new_conninfo")"
q "$node_host" "$node_port" "SELECT pg_catalog.pg_reload_conf()" >/dev/null

streaming() {
  [ "$(q "$node_host" "$node_port" "SELECT status = 'streaming' AND sender_port = $primary_port FROM pg_catalog.pg_stat_wal_receiver" 2>/dev/null)" = t ]
}
wait_streaming() {
  for _ in $(seq 1 "$1"); do streaming && return 0; sleep 0.2; done
  return 1
}

if wait_streaming 50; then
  echo "node $node_id follows node $primary_id ($primary_host:$primary_port)"
  exit 0
fi

echo "node $node_id does not stream from node $primary_id: rewinding it with pg_rewind"
run_pg "$PG_BINDIR/pg_ctl" -D "$node_data" -m fast -w -t 60 stop
run_pg "$PG_BINDIR/pg_rewind" -D "$node_data" --source-server="host=$primary_host port=$primary_port user=$user dbname=postgres"
run_pg touch "$node_data/standby.signal"
run_pg "$PG_BINDIR/pg_ctl" -D "$node_data" -l "$node_data/../node$node_id.log" -w -t 60 start >/dev/null
if wait_streaming 150; then
  echo "node $node_id rewound and follows node $primary_id"
  exit 0
fi
echo "node $node_id still does not stream from node $primary_id" >&2
exit 1
