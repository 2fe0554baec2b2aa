#!/usr/bin/env bash
# Runs `callaudit bench` against a private in-memory Temporal dev server, then stops it.
#
#   temporal-dev/bench.sh                 # 50 audits per run, 10 in flight, table
#   temporal-dev/bench.sh -n 200 -c 20    # any `callaudit bench` argument
#   temporal-dev/bench.sh --json          # machine-readable figures
#   temporal-dev/bench.sh sse --subscribers 500   # a load mode: api | sse | worker |
#                                         # scale | long (docs/PERFORMANCE.md, "Load")
#
#   - Postgres: $DATABASE_URL when set and reachable, else the embedded cluster
#     (postgres-start.sh); the bench creates its own database there and drops it;
#   - Temporal: `temporal-start.sh --memory` on a free port (BENCH_TEMPORAL_PORT to
#     choose one), started fresh for this bench and stopped afterwards; its pid is passed
#     on so the bench also reports the server's CPU per audit;
#   - the binary: $CALLAUDIT_BIN when set, else a release build (`cargo build --release`;
#     the first one takes ~15 min on 2 cores — figures from a debug build overstate what
#     our own code costs).
#
# Env: CALLAUDIT_BIN, BENCH_TEMPORAL_PORT, BENCH_PROFILE (release), DATABASE_URL.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
esac

ensure_state_dir
ensure_temporal_cli
DATABASE_URL=$("$ROOT/temporal-dev/postgres-start.sh")
export DATABASE_URL

if [[ -n "${CALLAUDIT_BIN:-}" ]]; then
  BIN=$CALLAUDIT_BIN
  [[ -x "$BIN" ]] || die "CALLAUDIT_BIN=$BIN is not an executable"
else
  profile=${BENCH_PROFILE:-release}
  log "building callaudit ($profile)"
  (cd "$ROOT" && cargo build --quiet --profile "$profile" -p callaudit)
  dir=$profile
  if [[ "$profile" == dev ]]; then dir=debug; fi
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$dir/callaudit"
fi
# A private copy: a rebuild while the bench runs must not swap the binary under it.
run_bin="$STATE/bench-callaudit-$$"
cp -- "$BIN" "$run_bin"

free_port() {
  "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=${BENCH_TEMPORAL_PORT:-$(free_port)}
[[ "$port" =~ ^[0-9]+$ ]] || die "BENCH_TEMPORAL_PORT must be a port number, got '$port'"
tcp_open 127.0.0.1 "$port" && die "port $port is taken: a bench needs a server of its own"
pidfile="$STATE/temporal-mem-$port.pid"
logfile="$STATE/temporal-mem-$port.log"

# cleanup STATUS : stop our server; keep its log only when the bench failed.
cleanup() {
  local status=$1 pid
  if pid=$(read_pidfile "$pidfile") && pid_alive "$pid" &&
    [[ "$(pid_cmdline "$pid")" == *"server start-dev"* ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
      pid_alive "$pid" || break
      sleep 0.2
    done
    pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
    log "temporal on 127.0.0.1:$port stopped (pid $pid)"
  fi
  rm -f -- "$pidfile" "$run_bin"
  if ((status == 0)); then rm -f -- "$logfile"; else log "Temporal log kept: $logfile"; fi
}
trap 'cleanup $?' EXIT

TEMPORAL_PORT=$port "$ROOT/temporal-dev/temporal-start.sh" --memory >/dev/null
temporal_pid=$(read_pidfile "$pidfile") || die "no pid file $pidfile after starting Temporal"

log "callaudit bench $* (Temporal 127.0.0.1:$port pid $temporal_pid, Postgres ${DATABASE_URL%%\?*})"
TEMPORAL_ADDRESS="127.0.0.1:$port" BENCH_TEMPORAL_PID=$temporal_pid "$run_bin" bench "$@"
