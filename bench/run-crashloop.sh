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

TAG=crashloop
# shellcheck source=bench/pg-cluster.sh
source "$ROOT/bench/pg-cluster.sh"

# fsync stays on: the loop kills idflow, not PostgreSQL, but commits then cost what they cost on
# a real disk.
start_postgres() {
  start_cluster -c max_connections=100
  export IDFLOW_TEST_PG_ADMIN_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
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
