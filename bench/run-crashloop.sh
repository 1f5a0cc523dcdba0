#!/usr/bin/env bash
# Crash loop (T38): bursts of concurrent password changes, each ended by `kill -9` of the idflow
# process at a different moment (before, during, after the commits), the database checked after
# each kill and the node restarted. Not part of CI (CI runs a few iterations per engine).
# See BENCHMARKS.md ("Crash loop: kill -9 during password changes").
#
# Usage:
#   bench/run-crashloop.sh                      1 000 iterations on SQLite, then on PostgreSQL
#   IDFLOW_FAULT_ITERATIONS=200 bench/run-crashloop.sh
#   IDFLOW_CRASHLOOP_DBS=sqlite bench/run-crashloop.sh     (only SQLite; or: postgres)
#
# Knobs (read by the test): IDFLOW_FAULT_ITERATIONS (default here 1000), IDFLOW_FAULT_SECONDS
# (time bound per engine, default here 7200), IDFLOW_FAULT_FLOWS (password changes per burst,
# default 6).
#
# It runs the integration test faults::kill_9_during_password_changes_leaves_old_or_new_{sqlite,
# postgres} (debug build: `cargo test`, which builds what it needs). For PostgreSQL it uses
# IDFLOW_TEST_PG_ADMIN_URL when set, else it starts a throwaway cluster on 127.0.0.1 the way
# scripts/test.sh does (removed on exit). Only the idflow process is killed, never PostgreSQL.
# Prints one summary line per engine: iterations, changed, unchanged, acknowledged changes,
# acknowledged_but_lost (must be 0), torn (must be 0), wall time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DBS="${IDFLOW_CRASHLOOP_DBS:-sqlite,postgres}"
export IDFLOW_FAULT_ITERATIONS="${IDFLOW_FAULT_ITERATIONS:-1000}"
export IDFLOW_FAULT_SECONDS="${IDFLOW_FAULT_SECONDS:-7200}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

note() { printf '[run-crashloop] %s\n' "$*" >&2; }

WORK="$(mktemp -d -t idflow-crashloop.XXXXXX)"
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

# A throwaway cluster as in scripts/test.sh (trust auth on loopback). fsync stays on: the loop
# kills idflow, not PostgreSQL, but commits then cost what they cost on a real disk.
start_postgres() {
  PGBIN="${IDFLOW_TEST_PG_BIN:-$(pg_config --bindir 2>/dev/null || true)}"
  if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
    PGBIN="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  fi
  [ -x "$PGBIN/initdb" ] || { note "PostgreSQL (initdb) not found"; return 1; }
  PG_DIR="$(mktemp -d -t idflow-crashloop-pg.XXXXXX)"
  if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$PG_DIR"; fi
  as_postgres "$PGBIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  local port
  port="$(free_port)"
  as_postgres "$PGBIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c max_connections=100" \
    start >/dev/null
  PG_STARTED=1
  export IDFLOW_TEST_PG_ADMIN_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

run_engine() {
  local engine="$1" log="$WORK/$1.log" start end
  note "$engine: $IDFLOW_FAULT_ITERATIONS iterations (time bound ${IDFLOW_FAULT_SECONDS}s)"
  start=$(date +%s)
  set +e
  cargo test -p idflow-server --test it \
    "faults::kill_9_during_password_changes_leaves_old_or_new_$engine" -- --exact --nocapture 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  end=$(date +%s)
  SUMMARY+=("$(grep -h 'crash loop summary' "$log" || echo "engine=$engine: no summary (see the output above)") exit=$rc script_wall_seconds=$((end - start))")
  [ "$rc" -eq 0 ] || FAILED=1
}

SUMMARY=()
FAILED=0
note "building the integration tests (debug)"
cargo test -p idflow-server --test it --no-run
case ",$DBS," in *,sqlite,*) run_engine sqlite ;; esac
case ",$DBS," in *,postgres,*)
  if [ -z "${IDFLOW_TEST_PG_ADMIN_URL:-}" ]; then start_postgres; fi
  run_engine postgres
  ;;
esac
printf '\n'
for line in "${SUMMARY[@]}"; do printf '%s\n' "$line"; done
exit "$FAILED"
