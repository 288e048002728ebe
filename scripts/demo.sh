#!/usr/bin/env bash
# npm run demo: a local cluster (one primary, two streaming replicas) under .demo/ in the
# checkout, a config for it, and Sluice in the foreground on port 9999. Ctrl-C stops it all.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# DEMO_DIR, DEMO_BASE_PORT, DEMO_PORT, DEMO_PCP_PORT, DEMO_HTTP_PORT: where and on which ports
# (the README's walkthrough test runs the demo on free ones).
demo=${DEMO_DIR:-$root/.demo}
base_port=${DEMO_BASE_PORT:-15432}
cluster="$demo/cluster"

mkdir -p "$demo"
if [ ! -f "$cluster/cluster.env" ]; then
  bash "$root/scripts/cluster.sh" create "$cluster" "$base_port" 2
else
  bash "$root/scripts/cluster.sh" start "$cluster"
fi
# shellcheck disable=SC1091
. "$cluster/cluster.env"

cat >"$demo/sluice.toml" <<TOML
# Written by scripts/demo.sh for the local demo cluster in $cluster.
listen_addresses = "localhost"
port = ${DEMO_PORT:-9999}
pcp_port = ${DEMO_PCP_PORT:-9898}
http_port = ${DEMO_HTTP_PORT:-9899}
num_init_children = 100
max_pool = 4
log_min_messages = "info"
# Reads are balanced over all three nodes; a session's reads after its own writes (and after the
# writes of sessions that ended before it began) go only to standbys that have replayed them, so
# applications and test suites see what a direct connection shows.
read_your_writes = true
work_dir = "$demo"

# Health checks and failover: kill -9 the primary (bash scripts/cluster.sh kill $cluster 0) and
# the most up-to-date standby is promoted, the other follows it, and sessions carry on.
health_check_period = 1
health_check_timeout = 2
health_check_max_retries = 1
connect_timeout = 2000
sr_check_period = 2
search_primary_node_timeout = 60
failover_command = "$root/scripts/failover.sh %d %h %p %D %m %H %M %P %r %R %N %S"
follow_primary_command = "$root/scripts/follow_primary.sh %d %h %p %D %m %H %M %P %r %R %N %S"
failback_command = "$root/scripts/failback.sh %d %h %p %D %m %H %M %P %r %R %N %S"

# Online recovery: after a failover, bring the old primary back as a standby with
# node dist/ctl.js recovery-node 0 (pg_rewind when it can, else pg_basebackup).
# One stage: in streaming replication the standby fetches the rest of the WAL itself (pgpool
# never runs a second stage there), so open sessions are neither held nor disconnected.
recovery_1st_stage_command = "$root/scripts/recovery_1st_stage.sh"
remote_start_command = "$root/scripts/remote_start.sh"

# PCP (pgpool's pcp_* programs and sluicectl): user admin, password admin.
[[pcp_user]]
name = "admin"
md5 = "21232f297a57a5a743894a0e4a801fc3"

[[backend]]
hostname = "127.0.0.1"
port = $BASE_PORT
data_directory = "$cluster/node0"
application_name = "node0"

[[backend]]
hostname = "127.0.0.1"
port = $((BASE_PORT + 1))
data_directory = "$cluster/node1"
application_name = "node1"

[[backend]]
hostname = "127.0.0.1"
port = $((BASE_PORT + 2))
data_directory = "$cluster/node2"
application_name = "node2"
TOML

stop_all() {
  trap - INT TERM EXIT
  [ -n "${pid:-}" ] && kill -INT "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  bash "$root/scripts/cluster.sh" stop "$cluster" || true
}
trap stop_all INT TERM EXIT

bash "$root/scripts/cluster.sh" status "$cluster"
# A .pcppass for the demo's PCP user (pgpool's format; must be 0600 or it is ignored).
printf '*:*:admin:admin\n' >"$demo/pcppass"
chmod 600 "$demo/pcppass"
echo "PCP on port ${DEMO_PCP_PORT:-9898}: PCPPASSFILE=$demo/pcppass node dist/ctl.js node-info -h localhost -p ${DEMO_PCP_PORT:-9898} -U admin -w"
echo "Sluice on port ${DEMO_PORT:-9999}: psql -h 127.0.0.1 -p ${DEMO_PORT:-9999} -U postgres postgres   (Ctrl-C stops everything)"
# The log as a person reads it, even when the demo's output goes to a file or a pipe.
node "$root/dist/cli.js" -f "$demo/sluice.toml" --log-format pretty &
pid=$!
wait "$pid"
