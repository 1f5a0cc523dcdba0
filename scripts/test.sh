#!/usr/bin/env bash
# The full test suite of idflow: the Rust workspace tests and the third-party Python client tests,
# against SQLite and a throwaway PostgreSQL cluster that this script starts and removes itself.
#
# Usage:
#   ./scripts/test.sh            run everything (README and CI call exactly this)
#   ./scripts/test.sh --pg-only  only start the PostgreSQL cluster, check it answers, and stop it
#   ./scripts/test.sh --python-only
#                                skip the Rust build and tests; run the Python client tests
#                                against the binary already built (IDFLOW_BIN)
#
# Needs: Debian 12 (or similar) with cargo, python3 (3.11) + pip, node >= 20 + npm; cargo-nextest
# is used when present. PostgreSQL 15 and Chromium (for the UI tests in tests/e2e) are installed
# with apt-get when missing (needs root).
#
# Every part runs even when an earlier one failed; the exit code is non-zero if any part failed.
# The last line printed is "N passed, M failed", summed over the Rust, Python, UI and JavaScript
# client runs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PG_ONLY=0
RUN_RUST=1
for arg in "$@"; do
  case "$arg" in
    --pg-only) PG_ONLY=1 ;;
    --python-only) RUN_RUST=0 ;;
    -h | --help)
      sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "unknown argument: $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Snapshot tests (insta) must find their committed .snap files and match them; never write new ones.
export INSTA_UPDATE="${INSTA_UPDATE:-no}"
export PYTHONDONTWRITEBYTECODE=1
export DEBIAN_FRONTEND=noninteractive

section() {
  printf '\n==================== %s ====================\n' "$*"
}

note() {
  printf '[test.sh] %s\n' "$*"
}

# Scratch space for logs ($WORK), as_postgres, free_port and the EXIT cleanup (stops and removes
# the PostgreSQL cluster this script starts below): shared with the bench scripts.
TAG="test"
# shellcheck source=bench/pg-cluster.sh
source "$ROOT/bench/pg-cluster.sh"

# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------

find_pgbin() {
  local dir=""
  if command -v pg_config >/dev/null 2>&1; then
    dir="$(pg_config --bindir 2>/dev/null || true)"
    if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
      return 0
    fi
  fi
  # Debian keeps the server binaries in a versioned directory; take the newest.
  dir="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
    echo "$dir"
    return 0
  fi
  return 1
}

install_postgres() {
  if PGBIN="$(find_pgbin)"; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    note "PostgreSQL (initdb/pg_ctl) is missing and installing it needs root"
    return 1
  fi
  note "PostgreSQL not found; installing Debian's postgresql package"
  apt-get update || return 1
  apt-get install -y --no-install-recommends postgresql || return 1
  PGBIN="$(find_pgbin)" || {
    note "initdb/pg_ctl still not found after installing postgresql"
    return 1
  }
}

start_postgres() {
  install_postgres || return 1
  note "PostgreSQL binaries: $PGBIN"

  PG_DIR="$(mktemp -d -t idflow-pg.XXXXXX)" || return 1
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$PG_DIR" || return 1
  fi

  as_postgres "$PGBIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 \
    --locale=C.UTF-8 --no-sync >"$PG_DIR/initdb.log" 2>&1 || {
    cat "$PG_DIR/initdb.log" >&2
    return 1
  }

  # The port is picked free and then handed to PostgreSQL; retry if someone took it meanwhile.
  local attempt port=""
  for attempt in 1 2 3; do
    port="$(free_port)"
    if as_postgres "$PGBIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null; then
      PG_STARTED=1
      break
    fi
    note "PostgreSQL did not start on port $port (attempt $attempt)"
    tail -n 20 "$PG_DIR/server.log" >&2 || true
  done
  if [ "$PG_STARTED" -ne 1 ]; then
    return 1
  fi

  "$PGBIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
    -c 'CREATE DATABASE idflow_test' || return 1

  export IDFLOW_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/idflow_test"
  export IDFLOW_TEST_PG_ADMIN_URL="postgres://postgres@127.0.0.1:$port/postgres"
  # Tests call psql to create a database each; make sure the versioned one is found.
  export PATH="$PGBIN:$PATH"
  # The fault tests start a throwaway cluster of their own (to stop and restart it under load).
  export IDFLOW_TEST_PG_BIN="$PGBIN"
  note "PostgreSQL is up: IDFLOW_TEST_POSTGRES_URL=$IDFLOW_TEST_POSTGRES_URL"
}

# --------------------------------------------------------------------------------------------
# Bookkeeping of parts and counts
# --------------------------------------------------------------------------------------------

FAILED_PARTS=()
TOTAL_PASSED=0
TOTAL_FAILED=0

# record NAME EXIT_CODE PASSED FAILED: add a part's counts. A part that failed without reporting
# any failed test (a build error, no tests found, a crash) counts as one failure, so the summary
# never reads "0 failed" for a broken run; a part that passed but ran no test is a failure too.
record() {
  local name="$1" rc="$2" passed="$3" failed="$4"
  if [ "$rc" -eq 0 ] && [ "$passed" -eq 0 ]; then
    note "$name ran no test: counted as a failure"
    rc=1
  fi
  if [ "$rc" -ne 0 ]; then
    FAILED_PARTS+=("$name")
    if [ "$failed" -eq 0 ]; then
      failed=1
    fi
  fi
  TOTAL_PASSED=$((TOTAL_PASSED + passed))
  TOTAL_FAILED=$((TOTAL_FAILED + failed))
  note "$name: $passed passed, $failed failed (exit $rc)"
}

# Sum "N <word>" over lines matching a pattern, e.g. count_in LOG 'test result:' passed
count_in() {
  local log="$1" pattern="$2" word="$3"
  { grep -E "$pattern" "$log" || true; } |
    { grep -oE "[0-9]+ $word" || true; } |
    awk '{ s += $1 } END { print s + 0 }'
}

# --------------------------------------------------------------------------------------------
# Parts
# --------------------------------------------------------------------------------------------

section "PostgreSQL"
if ! start_postgres; then
  FAILED_PARTS+=("postgres")
  TOTAL_FAILED=$((TOTAL_FAILED + 1))
  note "PostgreSQL could not be started; PostgreSQL-backed tests will fail or be skipped"
  if [ -n "$PG_DIR" ] && [ -f "$PG_DIR/server.log" ]; then
    tail -n 40 "$PG_DIR/server.log" >&2 || true
  fi
fi

if [ "$PG_ONLY" -eq 1 ]; then
  if [ "$PG_STARTED" -eq 1 ]; then
    "$PGBIN/psql" "$IDFLOW_TEST_POSTGRES_URL" -v ON_ERROR_STOP=1 -Atc 'SELECT version()'
    note "--pg-only: stopping the cluster again"
    exit 0
  fi
  exit 1
fi

section "Python environment (.venv)"
venv_ok=1
setup_venv() {
  local req="tests/python/requirements.txt" stamp=".venv/.requirements.sha256" python want
  python="$(command -v python3.11 || command -v python3)" || {
    note "python3 not found"
    return 1
  }
  if [ -d .venv ] && ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
    note ".venv is broken; recreating it"
    rm -rf .venv
  fi
  if [ ! -d .venv ]; then
    if ! "$python" -m venv .venv; then
      # Debian's own python3 needs the venv module from a separate package.
      rm -rf .venv
      if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update || return 1
        apt-get install -y --no-install-recommends python3-venv || return 1
        "$python" -m venv .venv || return 1
      else
        return 1
      fi
    fi
  fi
  want="$({ sha256sum "$req" | cut -d' ' -f1; .venv/bin/python -VV; } | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    note "requirements already installed (stamp matches)"
    return 0
  fi
  .venv/bin/python -m pip install --disable-pip-version-check -q -r "$req" || return 1
  echo "$want" >"$stamp"
  note "installed $req"
}
if ! setup_venv; then
  venv_ok=0
  FAILED_PARTS+=("venv")
  TOTAL_FAILED=$((TOTAL_FAILED + 1))
fi

section "Test OpenID provider (tests/oidc-provider: npm ci)"
# The Rust social sign-in tests start a real OpenID provider (the oidc-provider package, pinned by
# tests/oidc-provider/package-lock.json) with Node.js.
setup_oidc_provider() {
  local dir="tests/oidc-provider" stamp want
  if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
      note "Node.js/npm missing; installing Debian's nodejs and npm packages"
      apt-get update || return 1
      apt-get install -y --no-install-recommends nodejs npm || return 1
    else
      note "Node.js and npm are needed for the social sign-in tests"
      return 1
    fi
  fi
  stamp="$dir/node_modules/.package-lock.sha256"
  want="$({ sha256sum "$dir/package-lock.json" | cut -d' ' -f1; node --version; } | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    note "oidc-provider already installed (stamp matches)"
    return 0
  fi
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || return 1
  echo "$want" >"$stamp"
  note "installed $dir"
}
if setup_oidc_provider; then
  # Installed: the social sign-in tests must run (they skip with a note when it is missing).
  export IDFLOW_TEST_REQUIRE_OIDC=1
else
  FAILED_PARTS+=("oidc-provider")
  TOTAL_FAILED=$((TOTAL_FAILED + 1))
fi

RUST_LOG_FILE="$WORK/rust.log"
if [ "$RUN_RUST" -eq 1 ]; then
  # Formatting and lints fail the run like a failing test.
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add rustfmt clippy || note "rustfmt/clippy could not be installed"
  fi
  section "Rust: format (cargo fmt --all -- --check)"
  fmt_rc=0
  cargo fmt --all -- --check || fmt_rc=$?
  record "fmt" "$fmt_rc" "$((fmt_rc == 0 ? 1 : 0))" 0
  section "Rust: lints (cargo clippy --workspace --all-targets -- -D warnings)"
  clippy_rc=0
  cargo clippy --workspace --all-targets -- -D warnings || clippy_rc=$?
  record "clippy" "$clippy_rc" "$((clippy_rc == 0 ? 1 : 0))" 0
  section "Rust: build (cargo build --workspace --all-targets)"
  build_rc=0
  cargo build --workspace --all-targets || build_rc=$?
  section "Rust: tests"
fi
if [ "$RUN_RUST" -ne 1 ]; then
  note "--python-only: Rust build and tests skipped"
elif [ "$build_rc" -ne 0 ]; then
  note "build failed (exit $build_rc); Rust tests not run"
  record "rust" "$build_rc" 0 0
elif cargo nextest --version >/dev/null 2>&1; then
  set +e
  cargo nextest run --workspace --no-fail-fast 2>&1 | tee "$RUST_LOG_FILE"
  rust_rc=${PIPESTATUS[0]}
  set -e
  # nextest closes with: "Summary [ 1.2s] 12 tests run: 11 passed, 1 failed, 0 skipped"
  record "rust" "$rust_rc" \
    "$(count_in "$RUST_LOG_FILE" '^ *Summary \[' passed)" \
    "$(($(count_in "$RUST_LOG_FILE" '^ *Summary \[' failed) + $(count_in "$RUST_LOG_FILE" '^ *Summary \[' 'timed out')))"
else
  note "cargo-nextest not found; using cargo test"
  set +e
  cargo test --workspace --no-fail-fast 2>&1 | tee "$RUST_LOG_FILE"
  rust_rc=${PIPESTATUS[0]}
  set -e
  # one "test result: ok. 3 passed; 0 failed; ..." line per test binary
  record "rust" "$rust_rc" \
    "$(count_in "$RUST_LOG_FILE" '^test result:' passed)" \
    "$(count_in "$RUST_LOG_FILE" '^test result:' failed)"
fi

# Fuzz targets (fuzz/, cargo-fuzz on nightly): each runs for IDFLOW_FUZZ_SECONDS (default 30;
# 0 skips). Without a nightly toolchain or an installable cargo-fuzz the step is skipped with a
# note: the same checks run on stable as property tests (crates/idflow-server/tests/it/fuzz_props.rs).
run_fuzz() {
  local secs="${IDFLOW_FUZZ_SECONDS:-30}" t passed=0 failed=0 log="$WORK/fuzz.log"
  if [ "$secs" = "0" ]; then
    note "IDFLOW_FUZZ_SECONDS=0: fuzzing skipped"
    return 0
  fi
  if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    note "no nightly toolchain: fuzzing skipped (the checks ran as stable property tests)"
    return 0
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    note "installing cargo-fuzz"
    if ! cargo install cargo-fuzz --locked >"$log" 2>&1; then
      tail -n 20 "$log" >&2 || true
      note "cargo-fuzz is not installable here: fuzzing skipped (the checks ran as stable property tests)"
      return 0
    fi
  fi
  for t in parse_body v1_envelope schema_validate; do
    note "fuzzing $t for ${secs}s"
    if (cd fuzz && cargo +nightly fuzz run --dev --sanitizer none "$t" -- -max_total_time="$secs" -rss_limit_mb=4096) >"$log" 2>&1; then
      passed=$((passed + 1))
      grep -E '^(Done|#[0-9]+ +DONE)' "$log" | tail -n 1 || true
    else
      failed=$((failed + 1))
      tail -n 40 "$log" >&2 || true
      note "fuzz target $t failed (crash input under fuzz/artifacts/$t/)"
    fi
  done
  record "fuzz" "$failed" "$passed" "$failed"
}
if [ "$RUN_RUST" -eq 1 ] && [ "${build_rc:-1}" -eq 0 ]; then
  section "Fuzzing (cargo fuzz)"
  run_fuzz
fi

section "Python: third-party client tests (tests/python)"
PY_LOG_FILE="$WORK/python.log"
if [ "$venv_ok" -ne 1 ]; then
  note "no usable .venv; Python tests not run"
  record "python" 1 0 0
else
  export IDFLOW_BIN="${IDFLOW_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/idflow}"
  note "IDFLOW_BIN=$IDFLOW_BIN"
  set +e
  timeout --foreground --kill-after=30 1800 .venv/bin/python -m pytest tests/python -q 2>&1 | tee "$PY_LOG_FILE"
  py_rc=${PIPESTATUS[0]}
  set -e
  if [ "$py_rc" -eq 5 ]; then
    note "pytest collected no tests (exit 5)"
  fi
  # pytest closes with e.g. "3 passed, 1 failed, 2 errors in 4.56s"
  py_summary='^=*[ ]*[0-9]+ (passed|failed|errors?|skipped|deselected|xfailed|xpassed).* in [0-9.]+s'
  record "python" "$py_rc" \
    "$(count_in "$PY_LOG_FILE" "$py_summary" passed)" \
    "$(($(count_in "$PY_LOG_FILE" "$py_summary" failed) + $(count_in "$PY_LOG_FILE" "$py_summary" 'errors?')))"
fi

section "E2E: the self-service UI in headless Chromium (tests/e2e)"
E2E_LOG_FILE="$WORK/e2e.log"
install_chromium() {
  if [ -x /usr/bin/chromium ]; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    note "Chromium is missing and installing it needs root"
    return 1
  fi
  note "Chromium not found; installing Debian's chromium package"
  apt-get update || return 1
  apt-get install -y chromium || return 1
}
if [ "$RUN_RUST" -ne 1 ]; then
  note "--python-only: UI tests skipped"
elif ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  note "node/npm not found; UI tests not run"
  record "e2e" 1 0 0
elif ! install_chromium; then
  note "Chromium could not be installed; UI tests not run"
  record "e2e" 1 0 0
else
  export IDFLOW_BIN="${IDFLOW_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/idflow}"
  set +e
  timeout --foreground --kill-after=30 1200 tests/e2e/run.sh 2>&1 | tee "$E2E_LOG_FILE"
  e2e_rc=${PIPESTATUS[0]}
  set -e
  # node's spec reporter closes with "ℹ pass 28", "ℹ fail 0", "ℹ cancelled 0" lines
  e2e_count() { { grep -E "^ℹ $1 [0-9]+" "$E2E_LOG_FILE" || true; } | awk '{ s += $3 } END { print s + 0 }'; }
  record "e2e" "$e2e_rc" "$(e2e_count pass)" "$(($(e2e_count fail) + $(e2e_count cancelled)))"
  note "screenshots: test-artifacts/e2e/"
fi

section "JavaScript client: @ory/client-fetch against the server (tests/js)"
JS_LOG_FILE="$WORK/js.log"
if [ "$RUN_RUST" -ne 1 ]; then
  note "--python-only: JavaScript client tests skipped"
elif ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  note "node/npm not found; JavaScript client tests not run"
  record "js" 1 0 0
else
  # tests/js/run.sh runs `npm ci` when package-lock.json (or node) changed since the last install.
  export IDFLOW_BIN="${IDFLOW_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/idflow}"
  set +e
  timeout --foreground --kill-after=30 900 tests/js/run.sh 2>&1 | tee "$JS_LOG_FILE"
  js_rc=${PIPESTATUS[0]}
  set -e
  # node's spec reporter closes with "ℹ pass 33", "ℹ fail 0", "ℹ cancelled 0" lines
  js_count() { { grep -E "^ℹ $1 [0-9]+" "$JS_LOG_FILE" || true; } | awk '{ s += $3 } END { print s + 0 }'; }
  record "js" "$js_rc" "$(js_count pass)" "$(($(js_count fail) + $(js_count cancelled)))"
fi

section "Summary"
if [ "${#FAILED_PARTS[@]}" -gt 0 ]; then
  note "failed parts: ${FAILED_PARTS[*]}"
  overall=1
else
  note "all parts passed"
  overall=0
fi
echo "$TOTAL_PASSED passed, $TOTAL_FAILED failed"
exit "$overall"
