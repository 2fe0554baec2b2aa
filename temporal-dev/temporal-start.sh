#!/usr/bin/env bash
# Start a local Temporal dev server (`temporal server start-dev`) in the background.
#
#   temporal-dev/temporal-start.sh            # SQLite file .tmp/dev/temporal.db, Web UI
#   temporal-dev/temporal-start.sh --memory   # in-memory, headless (tests, benchmarks)
#
# Listens on 127.0.0.1:$TEMPORAL_PORT (default 7233), namespace `default`, with the
# callaudit custom search attributes (FicheId AuditId ScheduleId RunKind BatchId JobId,
# Keyword). If a Temporal server already answers on that port, says so and exits 0.
# Prints the address (127.0.0.1:PORT) on stdout once the server is healthy.
#
# Files (.tmp/dev/): temporal.{pid,log,db} (file mode), temporal-mem.{pid,log} (--memory);
# on a port other than 7233 the port is appended (temporal-mem-7244.pid, ...), so a test
# server and the demo server can run side by side.
#
# Env: TEMPORAL_PORT (7233), TEMPORAL_UI_PORT (TEMPORAL_PORT + 1000, i.e. 8233),
#      PYTHON (python3).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

memory=0
for arg in "$@"; do
  case "$arg" in
    --memory) memory=1 ;;
    -h | --help)
      sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument: $arg (see --help)" ;;
  esac
done

PORT=${TEMPORAL_PORT:-7233}
[[ "$PORT" =~ ^[0-9]+$ ]] || die "TEMPORAL_PORT must be a port number, got '$PORT'"
UI_PORT=${TEMPORAL_UI_PORT:-$((PORT + 1000))}
ADDRESS="127.0.0.1:$PORT"

name=temporal
if ((memory)); then name=temporal-mem; fi
if [[ "$PORT" != 7233 ]]; then name="$name-$PORT"; fi
PIDFILE="$STATE/$name.pid"
LOGFILE="$STATE/$name.log"
DBFILE="$STATE/$name.db"

ensure_state_dir
ensure_temporal_cli

# The temporal CLI against this server only: ignore the user's temporal config/env
# (a Temporal Cloud profile or TEMPORAL_ADDRESS must not redirect these checks).
tctl() {
  "$TEMPORAL_CLI" "$@" --address "$ADDRESS" --namespace default \
    --disable-config-file --disable-config-env --command-timeout 10s
}
healthy() { tctl operator cluster health 2>/dev/null | grep -q SERVING; }

# Prints the custom search attributes that are missing (or not Keyword).
missing_search_attributes() {
  local json sa
  json=$(tctl operator search-attribute list -o json 2>/dev/null) || return 1
  for sa in $TEMPORAL_SEARCH_ATTRIBUTES; do
    if ! grep -Eq "\"$sa\"[[:space:]]*:[[:space:]]*\"INDEXED_VALUE_TYPE_KEYWORD\"" <<<"$json"; then
      printf '%s\n' "$sa"
    fi
  done
}
search_attributes_ok() {
  local missing
  missing=$(missing_search_attributes) && [[ -z "$missing" ]]
}

# Register missing search attributes (an existing temporal.db keeps the set it was created
# with: start-dev's --search-attribute is not applied to it again).
ensure_search_attributes() {
  local missing sa
  missing=$(missing_search_attributes) || die "could not list search attributes on $ADDRESS"
  if [[ -n "$missing" ]]; then
    log "registering search attributes: $(echo "$missing" | tr '\n' ' ')"
    for sa in $missing; do
      # one --name per call: with several --name flags CLI 1.9.1 only creates the first
      tctl operator search-attribute create --name "$sa" --type Keyword >/dev/null ||
        die "could not create search attribute $sa (exists with another type?)"
    done
  fi
  wait_for "search attributes $TEMPORAL_SEARCH_ATTRIBUTES" 30 search_attributes_ok
}

is_our_server() { # PID
  local args
  args=$(pid_cmdline "$1")
  [[ "$args" == *start-dev* && "$args" == *"--port $PORT"* ]]
}

# ---- already running? ----------------------------------------------------------
if pid=$(read_pidfile "$PIDFILE") && pid_alive "$pid" && is_our_server "$pid"; then
  wait_for "Temporal on $ADDRESS to be healthy" 60 healthy
  ensure_search_attributes
  log "already running (pid $pid) on $ADDRESS; log $LOGFILE"
  printf '%s\n' "$ADDRESS"
  exit 0
fi
rm -f -- "$PIDFILE"

if tcp_open 127.0.0.1 "$PORT"; then
  if healthy; then
    other=''
    for f in "$STATE"/temporal*.pid; do
      if p=$(read_pidfile "$f") && pid_alive "$p" && is_our_server "$p"; then other="$f (pid $p)"; fi
    done
    if [[ -n "$other" ]]; then
      log "a Temporal server started by this script in the other mode already answers on $ADDRESS: $other; using it (run stop.sh first to switch modes)"
    else
      log "a Temporal server not started by this script already answers on $ADDRESS: using it as is"
    fi
    if missing=$(missing_search_attributes) && [[ -n "$missing" ]]; then
      warn "it lacks search attributes: $(echo "$missing" | tr '\n' ' ')(create each with: temporal operator search-attribute create --address $ADDRESS --name NAME --type Keyword)"
    fi
    printf '%s\n' "$ADDRESS"
    exit 0
  fi
  die "port $PORT on 127.0.0.1 is taken by something that is not a healthy Temporal server; set TEMPORAL_PORT"
fi

# ---- start -------------------------------------------------------------------------
args=(server start-dev --ip 127.0.0.1 --port "$PORT" --namespace default --log-level warn)
if ((memory)); then
  args+=(--headless)
  mode="in-memory, headless"
else
  if tcp_open 127.0.0.1 "$UI_PORT"; then
    die "UI port $UI_PORT is already taken; set TEMPORAL_UI_PORT (or use --memory for a headless server)"
  fi
  args+=(--ui-port "$UI_PORT" --db-filename "$DBFILE")
  mode="SQLite $DBFILE, UI http://localhost:$UI_PORT"
fi
for sa in $TEMPORAL_SEARCH_ATTRIBUTES; do
  args+=(--search-attribute "$sa=Keyword")
done

log "starting temporal server start-dev on $ADDRESS ($mode) ..."
t0=$(now_ms)
nohup "$TEMPORAL_CLI" "${args[@]}" >"$LOGFILE" 2>&1 </dev/null &
pid=$!
printf '%s\n' "$pid" >"$PIDFILE"

alive_and_healthy() {
  if ! pid_alive "$pid"; then
    rm -f -- "$PIDFILE"
    tail -n 20 "$LOGFILE" >&2 || true
    die "temporal server exited during startup (log above, also in $LOGFILE)"
  fi
  healthy
}
wait_for "Temporal on $ADDRESS to be healthy" 60 alive_and_healthy
t_healthy=$(elapsed_since "$t0")
ensure_search_attributes
log "Temporal up (pid $pid) on $ADDRESS: healthy after $t_healthy, search attributes ok after $(elapsed_since "$t0"); log $LOGFILE"
printf '%s\n' "$ADDRESS"
