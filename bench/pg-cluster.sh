# shellcheck shell=bash
# Shared by the bench scripts and scripts/test.sh (sourced, not run): a scratch directory and, on
# demand, a throwaway PostgreSQL cluster on 127.0.0.1 (trust auth on loopback), both removed when
# the script exits (scripts/test.sh starts its cluster itself and sets PG_DIR/PGBIN/PG_STARTED).
#
# Before sourcing, set TAG (names the temp directories). After it:
#   WORK                       a scratch directory
#   start_cluster OPTS…        initdb + start a cluster; OPTS are extra `postgres -c` settings
#                              (e.g. "-c fsync=off"); sets PGBIN, PG_DIR, PG_PORT
#   as_postgres CMD…           run CMD as the postgres user when this script runs as root
#   free_port                  print a free TCP port on 127.0.0.1
# The caller defines note() for its messages.

WORK="$(mktemp -d -t "idflow-$TAG.XXXXXX")"
PG_DIR=""
PGBIN=""
PG_PORT=""
PG_STARTED=0

as_postgres() {
  (
    cd "${PG_DIR:-/}" || exit
    if [ "$(id -u)" -eq 0 ]; then
      exec runuser -u postgres -- "$@"
    else
      exec "$@"
    fi
  )
}

cleanup() {
  local rc=$?
  if [ "$PG_STARTED" -eq 1 ]; then
    as_postgres "$PGBIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  [ -n "$PG_DIR" ] && rm -rf "$PG_DIR"
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start_cluster() {
  PGBIN="${IDFLOW_TEST_PG_BIN:-$(pg_config --bindir 2>/dev/null || true)}"
  if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
    PGBIN="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  fi
  [ -x "$PGBIN/initdb" ] || { note "PostgreSQL (initdb) not found"; return 1; }
  PG_DIR="$(mktemp -d -t "idflow-$TAG-pg.XXXXXX")"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$PG_DIR"; fi
  as_postgres "$PGBIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  PG_PORT="$(free_port)"
  as_postgres "$PGBIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR $*" \
    start >/dev/null
  PG_STARTED=1
}
