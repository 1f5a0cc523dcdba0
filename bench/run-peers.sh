#!/usr/bin/env bash
# Side-by-side benchmark: idflow vs django-allauth (headless + MFA) vs better-auth (twoFactor),
# all on SQLite, on this machine, driven by one load generator (idflow-bench peers).
# Not part of CI. See BENCHMARKS.md ("Side by side with django-allauth and better-auth").
#
# Usage:
#   bench/run-peers.sh [idflow-bench peers options…]
#   e.g. bench/run-peers.sh --duration 10s --rounds 3 --out /tmp/peers.md
#   add --baseline /path/to/another/idflow to measure a second idflow build (e.g. the one
#   before a change) in the same interleaved run
#   pinned mode (servers on CPU 0, load generator on CPU 1, one worker per server CPU):
#   bench/run-peers.sh --server-cpus 0 --client-cpus 1 --duration 5s --rounds 3
#
# What it does, in order:
#   1. installs the peers from their registries into local, git-ignored directories:
#      bench/peers/.venv (pip, bench/peers/requirements.txt, pinned) and
#      bench/peers/better-auth/node_modules (npm ci, package-lock.json, pinned; better-sqlite3
#      is compiled by node-gyp when no prebuilt binary can be fetched);
#   2. builds idflow with the dist profile (the release build with fat LTO, what ships) and
#      idflow-bench in release mode, into target/bench;
#   3. runs `idflow-bench peers`, which starts the three servers on 127.0.0.1 (idflow: one
#      process; django-allauth: gunicorn, sync workers = cores; better-auth: node:http under
#      node:cluster, workers = cores), seeds N identities into each, signs up one account per
#      client worker, runs every scenario at every concurrency interleaved
#      (idflow, allauth, better-auth, idflow, …) and prints markdown tables.
#
# Needs: cargo, python3 (3.10+) with venv, node >= 20 with npm, a C/C++ toolchain.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PEERS="$ROOT/bench/peers"

note() { printf '[run-peers] %s\n' "$*" >&2; }

# --- 1. peers -------------------------------------------------------------------------------
python="$(command -v python3.11 || command -v python3)"
if [ ! -x "$PEERS/.venv/bin/python" ]; then
  note "creating $PEERS/.venv"
  "$python" -m venv "$PEERS/.venv"
fi
stamp="$PEERS/.venv/.requirements.sha256"
want="$(sha256sum "$PEERS/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  note "installing bench/peers/requirements.txt"
  "$PEERS/.venv/bin/python" -m pip install --disable-pip-version-check -q -r "$PEERS/requirements.txt"
  echo "$want" >"$stamp"
fi

BA="$PEERS/better-auth"
stamp="$BA/node_modules/.package-lock.sha256"
want="$({ sha256sum "$BA/package-lock.json" | cut -d' ' -f1; node --version; } | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  note "installing better-auth (npm ci)"
  (cd "$BA" && npm ci --no-audit --no-fund --loglevel=error)
  if [ ! -f "$BA/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ]; then
    # npm versions that gate install scripts leave the native module unbuilt: build it.
    (cd "$BA" && npm rebuild better-sqlite3 --loglevel=error)
  fi
  echo "$want" >"$stamp"
fi
node -e "require('$BA/node_modules/better-sqlite3')" || {
  note "better-sqlite3 did not build"
  exit 1
}

# --- 2. idflow ------------------------------------------------------------------------------
note "building idflow (dist profile) + idflow-bench (release), target/bench"
cargo build --profile dist -p idflow-server --bin idflow --target-dir target/bench
cargo build --release -p idflow-bench --target-dir target/bench

# --- 3. run ---------------------------------------------------------------------------------
note "running the matrix (about 3 x scenarios x concurrencies x rounds x (duration + 1 s))"
exec target/bench/release/idflow-bench peers \
  --server target/bench/dist/idflow \
  --peers-dir "$PEERS" \
  "$@"
