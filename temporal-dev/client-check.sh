#!/usr/bin/env bash
# Generates a TypeScript client from callaudit's OpenAPI document (openapi-typescript +
# openapi-fetch, pinned in api/client-check/package-lock.json) and type-checks a use of it
# with `tsc --strict`: a client generated with a standard generator must compile with no
# hand edits. Needs node and npm; builds `callaudit` (debug) unless CALLAUDIT_BIN names one.
set -euo pipefail
# shellcheck source=temporal-dev/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
command -v npm >/dev/null || die "npm is needed (node 18 or later)"
dir="$ROOT/api/client-check"
bin=${CALLAUDIT_BIN:-}
if [[ -z "$bin" ]]; then
  (cd "$ROOT" && cargo build --quiet -p callaudit "$@")
  bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug/callaudit"
fi
"$bin" openapi >"$dir/openapi.json"
cd "$dir"
npm ci --no-audit --no-fund --silent
./node_modules/.bin/openapi-typescript openapi.json -o schema.d.ts --silent
./node_modules/.bin/tsc -p tsconfig.json
log "the generated client type-checks strictly"
