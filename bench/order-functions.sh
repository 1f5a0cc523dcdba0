#!/usr/bin/env bash
# Regenerates crates/idflow-server/function-order.txt: the functions of the idflow binary that
# serving requests runs, hottest first, which the linker lays out together at the start of the
# code (see crates/idflow-server/build.rs and BENCHMARKS.md, "the request paths' code laid out
# together"). Not part of CI; run it in every performance round, and after the request paths,
# the dependencies or the Rust toolchain changed (generic functions' symbol names carry hashes
# that change with them). A symbol the file names that no longer exists is skipped and a new
# one is laid out with the rest of the code: nothing breaks, the request paths just spread
# over more pages again.
#
# Usage: bench/order-functions.sh [path/to/idflow]
#   (with a path: profile that build of idflow instead of building the dist one; it must have
#   its symbol table, as the dist build has)
#
# What it does: builds idflow (dist profile) and idflow-bench, starts `idflow serve --dev`
# under valgrind's callgrind, zeroes its counts once the server answers (so start-up code
# stays out of the list), drives every idflow-bench scenario at concurrency 1 and 32 plus the
# web UI's sign-in, sign-up and settings pages, and writes the functions of the binary that
# ran, most instructions first, as the linker's symbol names.
#
# Needs: cargo, valgrind (callgrind_control), python3, curl.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="$ROOT/crates/idflow-server/function-order.txt"
note() { printf '[order-functions] %s\n' "$*" >&2; }

if [ $# -ge 1 ]; then
  BIN="$(realpath "$1")"
else
  note "building idflow (dist profile), target/bench"
  cargo build --profile dist -p idflow-server --bin idflow --target-dir target/bench
  BIN="$ROOT/target/bench/dist/idflow"
fi
note "building idflow-bench (release), target/bench"
cargo build --release -p idflow-bench --target-dir target/bench
BENCH="$ROOT/target/bench/release/idflow-bench"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ -n "${KEEP_PROFILE:-}" ]; then note "profile kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PP="$(free_port)"
AP="$(free_port)"
BASE="http://127.0.0.1:$PP"
# The configuration idflow-bench gives the servers it starts.
cat >"$WORK/config.yaml" <<EOF
serve:
  public:
    base_url: $BASE/
log:
  level: warn
limits:
  login_attempts: 1000000000
  second_factor_attempts: 1000000000
EOF

note "starting the server under callgrind"
valgrind --tool=callgrind --demangle=no --dump-instr=no \
  --callgrind-out-file="$WORK/callgrind.out" \
  "$BIN" serve --dev --config "$WORK/config.yaml" --database "sqlite://$WORK/order.db?mode=rwc" \
  --public-addr "127.0.0.1:$PP" --admin-addr "127.0.0.1:$AP" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do
  curl -fsS "$BASE/health/alive" >/dev/null 2>&1 && break
  sleep 0.5
done
curl -fsS "$BASE/health/alive" >/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
callgrind_control -z "$SERVER_PID" >/dev/null

note "driving the request paths"
"$BENCH" drive --target "$BASE" --duration 5s --concurrency 1,32 \
  --scenarios create_fetch,get,profile,password,whoami,totp_start >&2
# The web UI: the browser flows' redirects and the pages they land on.
for path in /self-service/login/browser /self-service/registration/browser /ui/login /ui/registration \
  /self-service/settings/browser /sessions/whoami /health/ready; do
  curl -sS -o /dev/null -c "$WORK/jar" -b "$WORK/jar" -L "$BASE$path" || true
done
sleep 2
callgrind_control -d "$SERVER_PID" >/dev/null
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

note "writing $OUT"
python3 - "$BIN" "$WORK" "$OUT" <<'PY'
import glob, os, re, sys

binary, work, out = sys.argv[1], sys.argv[2], sys.argv[3]
binary = os.path.realpath(binary)
cost = {}
# The dumps taken while serving ("callgrind.out.N"), not the one at exit (shutdown code).
for path in glob.glob(os.path.join(work, "callgrind.out.*")):
    names, objs = {}, {}
    ob = cur = None
    skip_next = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            m = re.match(r"^(c?)(ob|fn)=\((\d+)\)(?: (.*))?$", line)
            if m:
                call, kind, ident, name = m.groups()
                table = objs if kind == "ob" else names
                if name is not None:
                    table[ident] = name
                if not call:
                    if kind == "ob":
                        ob = table.get(ident)
                    else:
                        cur = table.get(ident) if ob and os.path.realpath(ob) == binary else None
                continue
            if line.startswith("calls="):
                skip_next = True  # the next cost line is the call's inclusive cost
                continue
            if line and (line[0].isdigit() or line[0] in "+-*"):
                if skip_next:
                    skip_next = False
                    continue
                if cur is not None:
                    parts = line.split()
                    if len(parts) >= 2 and parts[1].isdigit():
                        cost[cur] = cost.get(cur, 0) + int(parts[1])
ran = sorted((n for n, c in cost.items() if c > 0), key=lambda n: (-cost[n], n))
if len(ran) < 100:
    sys.exit(f"only {len(ran)} functions ran: the profile looks wrong")
with open(out, "w", encoding="utf-8") as f:
    f.write("\n".join(ran) + "\n")
print(f"{len(ran)} functions", file=sys.stderr)
PY
