#!/usr/bin/env bash
# PostgreSQL's own regression suite (src/test/regress of the source the installed server was
# built from), ready for pg_regress against a running server: the test integration/pg-regress
# runs it directly and through Sluice and compares the outputs.
#
#   pg-regress-suite.sh DIR     prepare DIR (which the postgres OS user must be able to read)
#
# DIR gets: regress/ (schedule, sql/, expected/, data/, input/, output/), and regress.so,
# refint.so and autoinc.so (the C functions some tests load); without a C compiler and the server
# headers to build them it fails (exit 1). The source comes from Debian's archive: the installed version's upstream
# tarball, or another of the same major version when the mirror no longer has that one (the
# outputs are compared run against run, not with the expected files, so a minor version apart
# does not matter). Nothing is installed system-wide but gcc when it is missing and we are root.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:?usage: pg-regress-suite.sh DIR}"
# shellcheck source=pg-env.sh
. "$root/scripts/pg-env.sh"
major=$("$PG_BINDIR/postgres" --version | grep -oE '[0-9]+' | head -n 1)

if [ -f "$dir/ready" ]; then exit 0; fi
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Debian versions of this major, the installed one first: 15.18-0+deb12u1 -> 15.18.
versions=$( (dpkg-query -W -f '${Version}\n' "postgresql-$major" 2>/dev/null; apt-cache madison "postgresql-$major" 2>/dev/null | awk '{print $3}') |
  sed -E 's/-.*//' | awk '!seen[$0]++')
got=""
for v in $versions; do
  for pool in debian/pool/main debian-security/pool/updates/main; do
    for ext in tar.bz2 tar.gz; do
      url="http://deb.debian.org/$pool/p/postgresql-$major/postgresql-${major}_$v.orig.$ext"
      if curl -sfL -o "$work/src.$ext" "$url"; then got="$work/src.$ext"; break 3; fi
    done
  done
done
[ -n "$got" ] || { echo "pg-regress-suite: no postgresql-$major source tarball found in Debian's archive (tried: $versions)" >&2; exit 1; }
tar -xf "$got" -C "$work" --wildcards '*/src/test/regress/*' '*/contrib/spi/*'
src=$(echo "$work"/postgresql-*)
rm -rf "$dir/regress" && cp -r "$src/src/test/regress" "$dir/regress"

# The C functions: the server's headers from Debian's -dev package, unpacked here (installing it
# would pull in clang and LLVM, and upgrade the server).
if ! command -v gcc >/dev/null && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc >&2 || true
fi
inc=""
if [ -d "/usr/include/postgresql/$major/server" ]; then
  inc="/usr/include/postgresql/$major/server"
elif (cd "$work" && { apt-get download -qq "postgresql-server-dev-$major" >/dev/null 2>&1 ||
  { [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 && apt-get download -qq "postgresql-server-dev-$major" >/dev/null 2>&1; }; }); then
  dpkg-deb -x "$work"/postgresql-server-dev-*.deb "$work/dev"
  inc="$work/dev/usr/include/postgresql/$major/server"
fi
# Without them the tests that load them fail alike directly and through Sluice, and would count as
# equal: no run at all is better than one that proves less than it says.
if command -v gcc >/dev/null && [ -n "$inc" ]; then
  for m in "$src/src/test/regress/regress.c" "$src/contrib/spi/refint.c" "$src/contrib/spi/autoinc.c"; do
    gcc -O1 -fPIC -shared -I "$inc" -I /usr/include/postgresql -o "$dir/$(basename "$m" .c).so" "$m" ||
      { echo "pg-regress-suite: could not build $(basename "$m")" >&2; exit 1; }
  done
else
  echo "pg-regress-suite: no C compiler or no server headers: cannot build regress.so" >&2
  exit 1
fi
# The server (running as postgres) loads the libraries and reads the data files.
chmod -R a+rX "$dir"
basename "$src" >"$dir/ready"
