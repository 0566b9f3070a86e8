#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (and for trying multi-machine search locally).
#
#   scripts/postgres.sh [--listen ADDRS] [--allow CIDR] [DIR]
#                                  start a cluster in DIR (default: a new folder under /tmp),
#                                  listening on a free port; prints its URL
#   scripts/postgres.sh --stop DIR stop it and delete DIR
#
#   --listen ADDRS  comma-separated addresses to listen on (default 127.0.0.1; the URL names the
#                   first), e.g. a bridge that network namespaces reach, as other machines would
#   --allow CIDR    also trust clients from CIDR (default: loopback only), e.g. 10.213.7.0/24
#
# Installs Debian's postgresql first when no server is installed (as root, with apt-get). No
# system service: initdb and pg_ctl run as the postgres user (the server refuses to run as
# root), trust authentication on loopback (and --allow) only, no fsync (the data is thrown away).
# Progress and errors go to stderr; stdout is the URL alone, e.g.
#   export DISTILLERY_TEST_PG=$(scripts/postgres.sh)
set -euo pipefail

server_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
as_owner=()  # root runs the server's programs as the postgres user
[ "$(id -u)" = 0 ] && as_owner=(runuser -u postgres --)

listen=127.0.0.1 allow=
while [ $# -gt 0 ]; do
  case $1 in
    --listen) listen=${2:?--listen needs addresses}; shift 2 ;;
    --allow) allow=${2:?--allow needs a CIDR}; shift 2 ;;
    *) break ;;
  esac
done
host=${listen%%,*}

if [ "${1:-}" = "--stop" ]; then
  dir=${2:?usage: scripts/postgres.sh --stop DIR}
  if [ -f "$dir/data/postmaster.pid" ]; then
    "${as_owner[@]}" "$(server_bin)/pg_ctl" -D "$dir/data" -m immediate stop >&2 || true
  fi
  rm -rf "$dir"
  exit 0
fi

if [ -z "$(server_bin)" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "postgres.sh: installing postgresql (apt-get)" >&2
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } >&2
  else
    echo "postgres.sh: no PostgreSQL server in /usr/lib/postgresql; install it" \
      "(Debian: apt-get install postgresql) or run this as root" >&2
    exit 1
  fi
fi
bin=$(server_bin)
[ -n "$bin" ] || { echo "postgres.sh: postgresql installed but no server found" >&2; exit 1; }

dir=${1:-$(mktemp -d "${TMPDIR:-/tmp}/distillery-pg.XXXXXX")}
mkdir -p "$dir"
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
  runuser -u postgres -- test -w "$dir" || {
    echo "postgres.sh: $dir is out of reach of the postgres user (a parent folder is closed);" \
      "give a folder under /tmp" >&2; exit 1; }
fi
port=$(python3 -c 'import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$host")

if ! "${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync \
    >"$dir/initdb.log" 2>&1; then
  cat "$dir/initdb.log" >&2
  exit 1
fi
[ -z "$allow" ] || echo "host all all $allow trust" >>"$dir/data/pg_hba.conf"
# no Unix socket (-k ''): TCP only, like a database on another machine
if ! "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-h $listen -p $port -k '' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null; then
  cat "$dir/server.log" >&2
  exit 1
fi
echo "postgres.sh: server in $dir (stop: scripts/postgres.sh --stop $dir)" >&2
echo "postgresql://postgres@$host:$port/postgres"
