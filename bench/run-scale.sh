#!/usr/bin/env bash
# Scale curve: idflow's per-operation cost with 10^3, 10^5 and 10^6 identities in the database,
# on SQLite and on PostgreSQL. Not part of CI. See BENCHMARKS.md ("Scale curve").
#
# Usage:
#   bench/run-scale.sh [idflow-bench scale options…]
#   e.g. bench/run-scale.sh --sizes 1000,100000,1000000 --duration 10s
#   IDFLOW_SCALE_DBS=sqlite bench/run-scale.sh     (only SQLite; or: postgres)
#
# Builds idflow (dist profile) + idflow-bench (release) into target/bench, starts a throwaway
# PostgreSQL cluster on 127.0.0.1 the way scripts/test.sh does (removed on exit), and runs
# `idflow-bench scale` once per database. Seeding goes through the store (`idflow-bench seed`:
# one password hash, reused), topping the same database up from one size to the next.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DBS="${IDFLOW_SCALE_DBS:-sqlite,postgres}"

note() { printf '[run-scale] %s\n' "$*" >&2; }

TAG=scale
# shellcheck source=bench/pg-cluster.sh
source "$ROOT/bench/pg-cluster.sh"

# The same cluster settings as scripts/test.sh (start_postgres): fsync off (a throwaway
# cluster), 300 connections.
start_postgres() {
  start_cluster -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off
  "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q -c 'CREATE DATABASE idflow_scale'
  PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/idflow_scale"
}

note "building idflow (dist profile) + idflow-bench (release), target/bench"
cargo build --profile dist -p idflow-server --bin idflow --target-dir target/bench
cargo build --release -p idflow-bench --target-dir target/bench
BENCH=target/bench/release/idflow-bench

case ",$DBS," in *,sqlite,*)
  note "SQLite"
  "$BENCH" scale --server target/bench/dist/idflow --label SQLite \
    --database "sqlite://$WORK/scale.db?mode=rwc" "$@"
  ;;
esac
case ",$DBS," in *,postgres,*)
  note "PostgreSQL"
  start_postgres
  "$BENCH" scale --server target/bench/dist/idflow --label PostgreSQL --seed-concurrency 32 \
    --database "$PG_URL" "$@"
  ;;
esac
