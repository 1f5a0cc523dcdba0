#!/usr/bin/env bash
# Soak (T44): two idflow nodes on one PostgreSQL under the mixed settings load of
# multinode-load for a long time, with chaos: kill -9 of a node at random moments (restarted on
# the same ports), termination of every database connection, and restarts of PostgreSQL itself
# (`pg_ctl restart -m immediate`; the nodes must recover without being restarted), plus one
# client signing in with random unknown identifiers. Not part of CI.
# See BENCHMARKS.md ("Soak: one hour on two nodes and PostgreSQL with chaos").
#
# Usage:
#   bench/run-soak.sh                                   1 hour, release build
#   IDFLOW_SOAK_DURATION=5m bench/run-soak.sh --kill-every 20s..40s --terminate-every 90s..150s \
#       --pg-restart-every 2m..3m                        a short run (extra arguments go to
#                                                        multinode-load and override its knobs)
#   IDFLOW_SOAK_PROFILE=debug bench/run-soak.sh          debug binaries (crypto still optimised)
#
# It starts its own throwaway PostgreSQL cluster (fsync on, removed on exit) and creates the
# load database in it; the nodes get a short cleanup interval and short flow lifetimes so that
# the cleanup worker's effect shows within the hour (the values are below and in BENCHMARKS.md).
# Exit code: that of multinode-load (1 on any violation or failed end check).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${IDFLOW_SOAK_DURATION:-1h}"
PROFILE="${IDFLOW_SOAK_PROFILE:-release}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

note() { printf '[run-soak] %s\n' "$*" >&2; }

case "$PROFILE" in
  release) BUILD=(--release); BIN="$TARGET/release" ;;
  debug) BUILD=(); BIN="$TARGET/debug" ;;
  *) note "IDFLOW_SOAK_PROFILE must be release or debug"; exit 2 ;;
esac

TAG=soak
# shellcheck source=bench/pg-cluster.sh
source "$ROOT/bench/pg-cluster.sh"

note "building idflow and multinode-load ($PROFILE)"
cargo build "${BUILD[@]}" -p idflow-server --bin idflow
cargo build "${BUILD[@]}" -p idflow-bench --bin multinode-load

# fsync stays on: PostgreSQL is restarted with -m immediate (crash recovery from the WAL).
start_cluster -c max_connections=150
as_postgres "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres idflow_soak
DATABASE="postgres://postgres@127.0.0.1:$PG_PORT/idflow_soak"

# The restart, as a script of its own (multinode-load runs it with sh -c). pg_ctl restart keeps
# the options the cluster was started with; -l keeps the server's output off our pipes.
RESTART="$WORK/pg-restart.sh"
{
  printf '#!/usr/bin/env bash\nset -euo pipefail\ncd %q\n' "$PG_DIR"
  if [ "$(id -u)" -eq 0 ]; then printf 'exec runuser -u postgres -- '; else printf 'exec '; fi
  printf '%q -D %q -l %q -m immediate -w -t 60 restart\n' "$PGBIN/pg_ctl" "$PG_DIR/data" "$PG_DIR/server.log"
} >"$RESTART"
chmod +x "$RESTART"

note "PostgreSQL on port $PG_PORT (fsync on); soak for $DURATION"
set +e
"$BIN/multinode-load" --server "$BIN/idflow" --database "$DATABASE" --duration "$DURATION" \
  --workers 16 --users 64 --chaos --pg-restart-cmd "$RESTART" --abuse-rate 8 \
  --cleanup-interval 30s --keep-expired 1m --flow-lifespan 2m --login-window 5m \
  --sample-every 60s "$@"
rc=$?
set -e
note "multinode-load exited with $rc"
exit "$rc"
