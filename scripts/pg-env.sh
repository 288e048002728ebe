# shellcheck shell=bash
# Sourced by the cluster scripts: finds (or installs) the PostgreSQL server binaries and defines
# run_pg, which runs a command as the postgres OS user when we are root (PostgreSQL refuses root).

find_pg_bindir() {
  if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ]; then echo "$PG_BINDIR"; return 0; fi
  if command -v pg_config >/dev/null 2>&1; then
    local d; d=$(pg_config --bindir 2>/dev/null)
    if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  fi
  local newest
  newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$newest" ] && [ -x "$newest/initdb" ]; then echo "$newest"; return 0; fi
  return 1
}

install_postgresql() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL server binaries not found: install PostgreSQL (Debian: apt-get install postgresql) or set PG_BINDIR" >&2
    return 1
  fi
  echo "installing PostgreSQL with apt-get" >&2
  # Debian's package would otherwise create and start a 'main' cluster on 5432 that we do not want.
  mkdir -p /etc/postgresql-common
  grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf ||
    echo 'create_main_cluster = false' >>/etc/postgresql-common/createcluster.conf
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
}

PG_BINDIR=$(find_pg_bindir) || { install_postgresql && PG_BINDIR=$(find_pg_bindir); } || {
  echo "PostgreSQL server binaries still not found after install" >&2
  exit 1
}
export PG_BINDIR

run_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}
