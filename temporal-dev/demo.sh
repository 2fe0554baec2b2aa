#!/usr/bin/env bash
# The README's main command: starts everything on this machine and runs the demo.
#   - Postgres ($DATABASE_URL, or a throwaway embedded cluster) and a Temporal dev server
#     with a SQLite file and its UI on http://localhost:8233;
#   - `callaudit sim` (CRM / ElevenLabs / OpenAI simulators) unless CRM_BASE_URL,
#     ELEVENLABS_API_KEY and OPENAI_API_KEY point at real services;
#   - `callaudit worker` and `callaudit api` (http://127.0.0.1:8080, Swagger UI at /docs);
#   - `callaudit demo`: loads the sample audit configuration and audits a sample fiche
#     through the real API, worker and workflows, then prints the summary; with the
#     simulators, then a batch audit of three fiches with its progress (`--batch`) and an
#     automation schedule run now and followed to its summary (`--automation`).
# Everything keeps running afterwards for exploration; stop it with temporal-dev/stop.sh.
set -euo pipefail
# shellcheck source=temporal-dev/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

"$ROOT/temporal-dev/up.sh" >/dev/null
# shellcheck disable=SC1091
source "$STATE/env"

log "building callaudit (first build takes several minutes on 2 cores)"
(cd "$ROOT" && cargo build --quiet -p callaudit)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/callaudit"

export API_ADDR=${API_ADDR:-127.0.0.1:8080}
export SIM_ADDR=${SIM_ADDR:-127.0.0.1:9090}
export AUTH_SEED_ADMIN_EMAIL=${AUTH_SEED_ADMIN_EMAIL:-admin@callaudit.local}
export AUTH_SEED_ADMIN_PASSWORD=${AUTH_SEED_ADMIN_PASSWORD:-demo-admin-password}
export TEMPORAL_TASK_QUEUE=${TEMPORAL_TASK_QUEUE:-callaudit}

if [[ -z "${CRM_BASE_URL:-}" || -z "${ELEVENLABS_API_KEY:-}" || -z "${OPENAI_API_KEY:-}" ]]; then
  log "using the local simulators on $SIM_ADDR (set CRM_BASE_URL, CRM_API_KEY, ELEVENLABS_API_KEY, OPENAI_API_KEY for real vendors)"
  export CRM_BASE_URL="http://$SIM_ADDR/crm" CRM_API_KEY=sim-crm-key
  export ELEVENLABS_BASE_URL="http://$SIM_ADDR/elevenlabs" ELEVENLABS_API_KEY=sim-elevenlabs-key
  export OPENAI_BASE_URL="http://$SIM_ADDR/openai/v1" OPENAI_API_KEY=sim-openai-key
  start_sim=1
else
  start_sim=0
fi

# start NAME ARGS... : runs `callaudit NAME` in the background once (pid + log in .tmp/dev).
start() {
  local name=$1 pidfile="$STATE/callaudit-$1.pid"
  if [[ -f "$pidfile" ]] && pid_alive "$(cat "$pidfile")"; then
    log "callaudit $name already running (pid $(cat "$pidfile"))"
    return
  fi
  nohup "$BIN" "$@" >"$STATE/callaudit-$name.log" 2>&1 &
  echo $! >"$pidfile"
  log "callaudit $name started (pid $!, log .tmp/dev/callaudit-$name.log)"
}

((start_sim)) && start sim
start worker
start api
wait_for "the api on $API_ADDR" 120 curl -fs "http://$API_ADDR/health" -o /dev/null

# With the simulators the demo ends with a batch audit of three sample fiches and an
# automation schedule over the simulated CRM's sales (their ids exist only there); extra
# arguments go to `callaudit demo`.
demo_args=(--api-url "http://$API_ADDR")
((start_sim)) && demo_args+=(--batch --automation)
"$BIN" demo "${demo_args[@]}" "$@"
log "still running: api http://$API_ADDR (docs /docs), Temporal UI http://localhost:8233; stop with temporal-dev/stop.sh"
