#!/usr/bin/env bash
# remote_start_command (pgpool's pgpool_remote_start) for nodes on this host:
#   remote_start_command = "/path/to/scripts/remote_start.sh"
# $1 target host, $2 target data directory. Starts the recovered node's PostgreSQL (as the
# postgres user when root), logging next to its data directory (<dir>.log, as scripts/cluster.sh
# does). Sluice then waits until it accepts connections as a standby, up to recovery_timeout.
# For nodes on other hosts see remote_start.ssh.sh.sample.
set -euo pipefail
here=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
# shellcheck source=pg-env.sh
. "$here/pg-env.sh"
# shellcheck source=standby-lib.sh
. "$here/standby-lib.sh"

data=${2%/}
clear_stale_pid "$data"
echo "starting PostgreSQL in $data"
run_pg "$PG_BINDIR/pg_ctl" -D "$data" -l "$data.log" -w -t "${RECOVERY_START_TIMEOUT:-90}" start >/dev/null
