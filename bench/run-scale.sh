#!/usr/bin/env bash
# Scale curve: idflow's per-operation cost with 10^3, 10^5 and 10^6 identities in the database,
# on SQLite and on PostgreSQL. Not part of CI. See BENCHMARKS.md ("Scale curve").
#
# Usage:
#   bench/run-scale.sh [idflow-bench scale options…]
#   e.g. bench/run-scale.sh --sizes 1000,100000,1000000 --duration 10s
#   IDFLOW_SCALE_DBS=sqlite bench/run-scale.sh     (only SQLite; or: postgres)
#
# Builds idflow + idflow-bench (release, target/bench), starts a throwaway PostgreSQL cluster
# on 127.0.0.1 the way scripts/test.sh does (removed on exit), and runs `idflow-bench scale`
# once per database. Seeding goes through the store (`idflow-bench seed`: one password hash,
# reused), topping the same database up from one size to the next.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DBS="${IDFLOW_SCALE_DBS:-sqlite,postgres}"

note() { printf '[run-scale] %s\n' "$*" >&2; }

WORK="$(mktemp -d -t idflow-scale.XXXXXX)"
PG_DIR=""
PGBIN=""
PG_STARTED=0

as_postgres() {
  (
    cd "${PG_DIR:-/}"
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

# The same cluster settings as scripts/test.sh (start_postgres): trust auth on loopback,
# fsync off (a throwaway cluster), 300 connections.
start_postgres() {
  PGBIN="$(pg_config --bindir 2>/dev/null || true)"
  if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
    PGBIN="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  fi
  [ -x "$PGBIN/initdb" ] || { note "PostgreSQL (initdb) not found"; return 1; }
  PG_DIR="$(mktemp -d -t idflow-scale-pg.XXXXXX)"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$PG_DIR"; fi
  as_postgres "$PGBIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync \
    >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  local port
  port="$(free_port)"
  as_postgres "$PGBIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
  PG_STARTED=1
  "$PGBIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q -c 'CREATE DATABASE idflow_scale'
  PG_URL="postgres://postgres@127.0.0.1:$port/idflow_scale"
}

note "building idflow + idflow-bench (release, target/bench)"
cargo build --release -p idflow-server -p idflow-bench --target-dir target/bench
BENCH=target/bench/release/idflow-bench

case ",$DBS," in *,sqlite,*)
  note "SQLite"
  "$BENCH" scale --server target/bench/release/idflow --label SQLite \
    --database "sqlite://$WORK/scale.db?mode=rwc" "$@"
  ;;
esac
case ",$DBS," in *,postgres,*)
  note "PostgreSQL"
  start_postgres
  "$BENCH" scale --server target/bench/release/idflow --label PostgreSQL --seed-concurrency 32 \
    --database "$PG_URL" "$@"
  ;;
esac
