#!/usr/bin/env bash
# Runs the JavaScript client tests (node's built-in test runner) against the built idflow binary.
#
# Usage: tests/js/run.sh            (IDFLOW_BIN defaults to target/debug/idflow)
# Needs: node >= 20 with npm; psql and IDFLOW_TEST_PG_ADMIN_URL for the PostgreSQL runs (skipped
# without them). npm packages are installed from package-lock.json.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

# Install the pinned packages when node_modules is missing or older than the lockfile.
stamp="node_modules/.lock.sha256"
want="$({ sha256sum package-lock.json | cut -d' ' -f1; node --version; } | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi

exec node --test --test-concurrency=1 --test-reporter=spec "$@" ./*.test.mjs
