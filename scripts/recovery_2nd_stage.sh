#!/usr/bin/env bash
# recovery_2nd_stage_command for nodes on this host: runs while new sessions are held and the
# open ones have left, with the same arguments as the first stage ($1 primary data directory,
# $2 target host, $3 target data directory, $4 primary port, $5 target node id, $6 target port,
# $7 primary host). In streaming replication the standby fetches the rest of the WAL itself;
# this switches the primary to a new WAL segment so that everything written before the hold is
# in a finished segment, and checks that the first stage left a standby behind.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
# shellcheck source=pg-env.sh
. "$here/pg-env.sh"

node_data=$3 primary_port=$4 target_id=$5 primary_host=$7
user=${PGUSER:-postgres}

if [ ! -f "$node_data/standby.signal" ]; then
  echo "node $target_id: $node_data has no standby.signal (did the first stage run?)" >&2
  exit 1
fi
lsn=$("$PG_BINDIR/psql" -X -q -A -t -h "$primary_host" -p "$primary_port" -U "$user" -d postgres -c 'SELECT pg_catalog.pg_switch_wal()')
echo "node $target_id: second stage done; the primary switched WAL at $lsn"
