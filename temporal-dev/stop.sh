#!/usr/bin/env bash
# Stop what the temporal-dev scripts started; safe to run any time, any number of times.
#
#   temporal-dev/stop.sh           # stop Temporal dev servers + the embedded Postgres
#   temporal-dev/stop.sh --purge   # ... and delete their data (.tmp/dev/pg, *.db, logs)
#
# Only processes recorded in .tmp/dev/ (Temporal pid files, the embedded cluster's
# postmaster.pid) are touched, after checking their command line; a system Postgres or a
# Temporal server started by someone else is left alone.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

purge=0
for arg in "$@"; do
  case "$arg" in
    --purge) purge=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

if [[ ! -d "$STATE" ]]; then
  log "nothing to stop ($STATE does not exist)"
  exit 0
fi

# wait_gone PID TIMEOUT_S : true once the process is gone.
wait_gone() {
  local pid=$1 deadline=$(($(now_ms) + $2 * 1000))
  while pid_alive "$pid"; do
    (($(now_ms) < deadline)) || return 1
    sleep 0.2
  done
}

# ---- callaudit processes started by demo.sh (api, worker, sim) -----------------
for pidfile in "$STATE"/callaudit-*.pid; do
  [[ -e "$pidfile" ]] || continue
  name=$(basename -- "$pidfile" .pid)
  pid=$(read_pidfile "$pidfile") || pid=''
  if [[ -n "$pid" ]] && pid_alive "$pid" && [[ "$(pid_cmdline "$pid")" == *callaudit* ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 40 || kill -KILL "$pid" 2>/dev/null || true
    log "$name: stopped (pid $pid)"
  fi
  rm -f -- "$pidfile"
done

# ---- Temporal dev servers (one pid file per mode/port) -------------------------
stopped_any=0
for pidfile in "$STATE"/temporal*.pid; do
  [[ -e "$pidfile" ]] || continue
  name=$(basename -- "$pidfile" .pid)
  pid=$(read_pidfile "$pidfile") || pid=''
  if [[ -z "$pid" ]] || ! pid_alive "$pid"; then
    log "$name: not running (stale pid file removed)"
    rm -f -- "$pidfile"
    continue
  fi
  if [[ "$(pid_cmdline "$pid")" != *"server start-dev"* ]]; then
    warn "$name: pid $pid is no longer a temporal server (pid reused?): leaving it alone"
    rm -f -- "$pidfile"
    continue
  fi
  t0=$(now_ms)
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 30; then
    warn "$name: pid $pid ignored SIGTERM for 30s: sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || die "$name: pid $pid would not die"
  fi
  rm -f -- "$pidfile"
  log "$name: stopped (pid $pid) in $(elapsed_since "$t0")"
  stopped_any=1
done
if ((stopped_any == 0)); then log "temporal: nothing running"; fi

# ---- embedded Postgres ------------------------------------------------------------
if pid=$(embedded_pg_pid); then
  t0=$(now_ms)
  PG_BIN='' PG_OWNER=''
  # shellcheck disable=SC1090 # written by postgres-start.sh
  if [[ -f "$PG_META" ]]; then source "$PG_META"; fi
  if [[ -z "$PG_BIN" || ! -x "$PG_BIN/pg_ctl" ]]; then
    PG_BIN=''
    if ctl=$(embedded_pg_ctl); then PG_BIN=$(dirname -- "$ctl"); fi
  fi
  if [[ -n "$PG_OWNER" && "$PG_OWNER" != root ]]; then PG_OS_USER=$PG_OWNER; fi
  if [[ -n "$PG_BIN" && -x "$PG_BIN/pg_ctl" ]] &&
    pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1; then
    :
  else
    # no usable pg_ctl: SIGINT is PostgreSQL's "fast" shutdown
    kill -INT "$pid" 2>/dev/null || true
    wait_gone "$pid" 60 || die "embedded postgres (pid $pid) did not stop; see $PG_RUN/postgres.log"
  fi
  log "embedded postgres: stopped (pid $pid) in $(elapsed_since "$t0")"
else
  log "embedded postgres: not running"
fi

if ((purge)); then
  rm -rf -- "$PG_DATA" "$PG_RUN" "$STATE"/temporal*.db "$STATE"/temporal*.db-* \
    "$STATE"/temporal*.log "$STATE/initdb.log" "$STATE/pg.env" "$STATE/env" "$PG_META"
  log "purged data and logs under $STATE (kept: installed binaries)"
fi
