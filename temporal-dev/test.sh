#!/usr/bin/env bash
# The README's test command. Starts what the tests need and runs every test:
#   - Postgres: $DATABASE_URL when set and reachable, else a throwaway embedded cluster;
#   - an in-memory Temporal dev server on 127.0.0.1:${CALLAUDIT_TEST_TEMPORAL_PORT:-7244}
#     (4x faster than the SQLite file; tests use their own task queues and databases);
# then `cargo test --workspace` (extra arguments are passed to cargo test).
set -euo pipefail
# shellcheck source=temporal-dev/lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

ensure_temporal_cli
DATABASE_URL=$("$ROOT/temporal-dev/postgres-start.sh")
port=${CALLAUDIT_TEST_TEMPORAL_PORT:-7244}
TEMPORAL_PORT=$port "$ROOT/temporal-dev/temporal-start.sh" --memory >/dev/null

export CALLAUDIT_TEST_DATABASE_URL="$DATABASE_URL"
export CALLAUDIT_TEST_TEMPORAL_ADDRESS="127.0.0.1:$port"
export TEMPORAL_CLI
log "tests against $CALLAUDIT_TEST_TEMPORAL_ADDRESS and ${DATABASE_URL%%\?*}"
cd "$ROOT"
cargo test --workspace "$@"
