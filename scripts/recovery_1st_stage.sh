#!/usr/bin/env bash
# recovery_1st_stage_command for nodes on this host (the demo and the tests use it):
#   recovery_1st_stage_command = "/path/to/scripts/recovery_1st_stage.sh"
# pgpool's arguments: $1 primary data directory, $2 target host, $3 target data directory,
# $4 primary port, $5 target node id, $6 target port, $7 primary host.
# Makes the target's data directory a standby of the current primary, left stopped (the remote
# start command starts it): pg_rewind when the old data directory can be rewound (much faster
# for an old primary after a failover), else a fresh pg_basebackup. Either way the node keeps
# its own configuration (port), streams through replication slot "node<id>" (the names
# scripts/cluster.sh gives; RECOVERY_APPLICATION_NAME changes it), with standby.signal.
# Runs as root (the server commands as the postgres user) or as the postgres user itself (from
# pgpool's pgpool_recovery extension). For nodes on other hosts see recovery_1st_stage.ssh.sh.sample.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
# shellcheck source=pg-env.sh
. "$here/pg-env.sh"
# shellcheck source=standby-lib.sh
. "$here/standby-lib.sh"

target_host=$2 node_data=$3 primary_port=$4 target_id=$5 target_port=$6 primary_host=$7
user=${PGUSER:-postgres}
app=${RECOVERY_APPLICATION_NAME:-node$target_id}
conninfo="host=$primary_host port=$primary_port user=$user application_name=$app"

make_slot "$app"
if [ -f "$node_data/PG_VERSION" ]; then
  stop_server "$target_host" "$target_port"
  clear_stale_pid "$node_data"
  echo "node $target_id: rewinding $node_data to the primary with pg_rewind"
  if rewind_to_primary; then
    set_upstream "$conninfo" "$app"
    echo "node $target_id: rewound; a standby of $primary_host:$primary_port"
    exit 0
  fi
  echo "node $target_id: pg_rewind could not rewind it; taking a new base backup"
fi

# A base backup copies the primary's configuration: the node's own files are kept when they
# exist, else its port is set.
keep=$(run_pg mktemp -d)
for f in postgresql.conf postgresql.auto.conf pg_hba.conf; do
  if [ -f "$node_data/$f" ]; then run_pg cp "$node_data/$f" "$keep/"; fi
done
run_pg rm -rf "$node_data"
echo "node $target_id: pg_basebackup from $primary_host:$primary_port into $node_data"
nosync=(); if [ "${PG_FAST:-0}" = 1 ]; then nosync=(--no-sync); fi
run_pg "$PG_BINDIR/pg_basebackup" -h "$primary_host" -p "$primary_port" -U "$user" -D "$node_data" \
  -X stream -S "$app" --checkpoint=fast "${nosync[@]}"
for f in postgresql.conf postgresql.auto.conf pg_hba.conf; do
  if [ -f "$keep/$f" ]; then run_pg cp "$keep/$f" "$node_data/"; fi
done
run_pg rm -rf "$keep"
run_pg touch "$node_data/postgresql.auto.conf"
run_pg sed -i -E '/^port = /d' "$node_data/postgresql.auto.conf"
printf 'port = %s\n' "$target_port" | run_pg tee -a "$node_data/postgresql.auto.conf" >/dev/null
set_upstream "$conninfo" "$app"
echo "node $target_id: a standby of $primary_host:$primary_port"
