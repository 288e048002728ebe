#!/usr/bin/env bash
# failover_command for nodes on this host (the demo and the tests use it):
#   failover_command = "/path/to/scripts/failover.sh %d %h %p %D %m %H %M %P %r %R %N %S"
# When the failed node was the primary, promote the new main node (%m: Sluice passes the most
# up-to-date live standby) with pg_ctl promote. A failed standby needs nothing here.
# For nodes on other hosts see failover.ssh.sh.sample. The same values are in SLUICE_* variables.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=pg-env.sh
. "$here/pg-env.sh"

failed_id=$1 failed_host=$2 failed_port=$3 failed_data=$4 new_main_id=$5 old_primary_id=$8 new_main_data=${10}

if [ "$failed_id" != "$old_primary_id" ]; then
  echo "node $failed_id was a standby: nothing to promote"
  exit 0
fi
if [ "$new_main_id" -lt 0 ] || [ -z "$new_main_data" ]; then
  echo "primary node $failed_id failed and no standby is left to promote" >&2
  exit 1
fi
# A primary that still runs (a switchover, or a detach by an administrator) is stopped first:
# a detached primary must not take writes, and a clean stop sends its last WAL (the shutdown
# checkpoint) to the standbys before one is promoted, so the old primary can follow the new one
# without pg_rewind (follow_primary.sh starts it again as a standby).
if "$PG_BINDIR/pg_isready" -q -h "$failed_host" -p "$failed_port" && [ -d "$failed_data" ]; then
  echo "primary node $failed_id still runs: stopping it before the promotion"
  run_pg "$PG_BINDIR/pg_ctl" -D "$failed_data" -m fast -w -t 60 stop
fi
echo "primary node $failed_id failed: promoting node $new_main_id ($new_main_data)"
run_pg "$PG_BINDIR/pg_ctl" -D "$new_main_data" -w -t 60 promote
