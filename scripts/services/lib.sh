# shellcheck shell=bash
# Shared helpers for scripts/services/*.sh. Sourced, never run directly.
#
# Conventions:
#   - all state lives under $SERVICES_DIR (default: <repo>/.services);
#   - every daemon gets <svc>.pid and <svc>.log in its own directory;
#   - daemons are started in their own session (setsid) with job control on,
#     so they do not inherit "ignore SIGINT" from a non-interactive shell and
#     do not die with the calling shell; they are stopped by PID file.

SERVICES_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SERVICES_LIB_DIR/../.." && pwd)"
SERVICES_DIR="${SERVICES_DIR:-$REPO_ROOT/.services}"
mkdir -p "$SERVICES_DIR"
SERVICES_DIR="$(cd "$SERVICES_DIR" && pwd)"
export SERVICES_DIR

# How long `stop` waits for a clean exit before SIGKILL, and how long
# `start` waits for readiness (seconds).
STOP_TIMEOUT="${STOP_TIMEOUT:-60}"
START_TIMEOUT="${START_TIMEOUT:-120}"
LOG_TAIL_LINES="${LOG_TAIL_LINES:-60}"

svc_log() { printf '[%s] %s\n' "${SVC_NAME:-services}" "$*" >&2; }

die() {
    svc_log "ERROR: $*"
    exit 1
}

# now_s: seconds since epoch with sub-second precision (for timings).
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

# tail_log FILE [OFFSET]: print the tail of a service log to stderr: only what
# was written since byte OFFSET when given, else since the last start marker
# that start_daemon writes (so an old run's lines are not shown).
tail_log() {
    local file="$1" offset="${2:-}" from=1
    if [[ ! -s "$file" ]]; then
        printf -- '(log %s is empty or missing)\n' "$file" >&2
        return 0
    fi
    printf -- '----- last lines of %s (this start only) -----\n' "$file" >&2
    if [[ -n "$offset" ]]; then
        tail -c "+$((offset + 1))" "$file" | tail -n "$LOG_TAIL_LINES" >&2 || true
    else
        from="$(awk '/^===== .* starting: /{n=NR} END{print n+0}' "$file")"
        ((from > 0)) || from=1
        tail -n "+$from" "$file" | tail -n "$LOG_TAIL_LINES" >&2 || true
    fi
    printf -- '----- end of %s -----\n' "$file" >&2
}

# file_size FILE: size in bytes (0 when missing), to pass to tail_log later.
file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# fail_with_log FILE MESSAGE...: print the log tail, then die.
# FAIL_LOG_OFFSET (optional) is passed on to tail_log.
fail_with_log() {
    local file="$1"
    shift
    tail_log "$file" "${FAIL_LOG_OFFSET:-}"
    die "$*"
}

# read_pid PIDFILE: print the PID stored in PIDFILE (first line) or nothing.
read_pid() {
    local file="$1" pid=""
    [[ -f "$file" ]] || return 0
    read -r pid <"$file" || true
    [[ "$pid" =~ ^[0-9]+$ ]] && printf '%s' "$pid"
    return 0
}

# pid_alive PID: true if the process exists and is not a zombie.
pid_alive() {
    local pid="$1" state
    [[ -n "$pid" ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Field 3 of /proc/PID/stat, after the ")" that closes the command name.
    state="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1 || true)"
    [[ -n "$state" && "$state" != Z ]]
}

# pidfile_alive PIDFILE: true if PIDFILE names a live process.
pidfile_alive() { pid_alive "$(read_pid "$1")"; }

# port_open PORT [HOST]: true if something accepts TCP connections there.
port_open() {
    local port="$1" host="${2:-127.0.0.1}"
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# require_port_free PORT WHAT: clear error when the port is taken.
require_port_free() {
    local port="$1" what="$2" who=""
    if port_open "$port"; then
        if command -v ss >/dev/null 2>&1; then
            who="$(ss -Htlnp "sport = :$port" 2>/dev/null | head -n 3 || true)"
        fi
        die "port $port (for $what) is already in use by another process${who:+: $who}. Stop it or choose another port (see docs/services.md)."
    fi
}

# start_daemon PIDFILE LOGFILE CMD...: start CMD detached (own session and
# process group, stdin from /dev/null, stdout+stderr appended to LOGFILE) and
# record its PID. The inner shell writes its own PID and then execs CMD, so the
# recorded PID is the daemon itself even when setsid has to fork. `set -m`
# keeps bash from starting the job with SIGINT/SIGQUIT ignored; fd 9 (the
# svc_lock) is closed so the daemon does not hold the lock.
start_daemon() {
    local pidfile="$1" logfile="$2"
    shift 2
    rm -f "$pidfile"
    printf '\n===== %s starting: %s =====\n' "$(date -Is)" "$*" >>"$logfile"
    set -m
    # shellcheck disable=SC2016 # $$ and $@ are for the inner shell
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 9>&- &
    set +m
    local i
    for i in $(seq 1 50); do
        [[ -s "$pidfile" ]] && return 0
        sleep 0.1
    done
    fail_with_log "$logfile" "daemon did not record its PID in $pidfile"
}

# wait_ready PIDFILE LOGFILE TIMEOUT WHAT CHECK...: poll CHECK (a command)
# until it succeeds; fail early (with the log tail) if the process died.
wait_ready() {
    local pidfile="$1" logfile="$2" timeout="$3" what="$4"
    shift 4
    local start pid
    start="$(date +%s)"
    while true; do
        pid="$(read_pid "$pidfile")"
        if ! pid_alive "$pid"; then
            fail_with_log "$logfile" "$what exited during startup (pid ${pid:-?})"
        fi
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if (($(date +%s) - start >= timeout)); then
            fail_with_log "$logfile" "$what not ready after ${timeout}s (pid $pid still running; stop it with: $0 stop)"
        fi
        sleep 0.5
    done
}

# stop_pidfile PIDFILE WHAT [SIGNAL]: send SIGNAL (default TERM), wait up to
# STOP_TIMEOUT seconds, then SIGKILL. No-op when not running.
stop_pidfile() {
    local pidfile="$1" what="$2" sig="${3:-TERM}" pid i
    pid="$(read_pid "$pidfile")"
    if ! pid_alive "$pid"; then
        svc_log "$what is not running"
        rm -f "$pidfile"
        return 0
    fi
    svc_log "stopping $what (pid $pid, SIG$sig)"
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    if pid_alive "$pid"; then
        svc_log "$what did not exit within ${STOP_TIMEOUT}s: sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            pid_alive "$pid" || break
            sleep 0.1
        done
        if pid_alive "$pid"; then
            die "$what (pid $pid) survived SIGKILL"
        fi
    fi
    rm -f "$pidfile"
    svc_log "$what stopped"
}

# apt_install PKG...: install Debian packages that are missing; apt-get update
# only when a package is unknown to the current lists (or the first try fails).
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    [[ "$(id -u)" == 0 ]] || die "need root to apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    local need_update=0
    for p in "${missing[@]}"; do
        apt-cache show "$p" >/dev/null 2>&1 || need_update=1
    done
    if ((need_update)); then
        svc_log "apt-get update (package lists do not know: ${missing[*]})"
        apt-get update -qq
    fi
    svc_log "apt-get install -y ${missing[*]}"
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        svc_log "install failed; retrying after apt-get update"
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# svc_lock NAME: serialize install/start/stop of one service (two `start`s at
# once would otherwise race on the PID file). Held until the script exits.
svc_lock() {
    command -v flock >/dev/null 2>&1 || return 0
    exec 9>"$SERVICES_DIR/.$1.lock"
    flock -w 600 9 || die "another $1 install/start/stop holds $SERVICES_DIR/.$1.lock"
}

# usage_exit VERBS: generic usage message.
usage_exit() {
    echo "usage: $0 {$1}" >&2
    exit 2
}

# Ports and local-only credentials of the loopback services, overridable from the environment.
service_defaults() {
  KAFKA_PORT="${KAFKA_PORT:-19092}"
  S3_PORT="${S3_PORT:-19000}"
  S3_ACCESS_KEY="${S3_ACCESS_KEY:-minioadmin}"
  S3_SECRET_KEY="${S3_SECRET_KEY:-minioadmin-secret}"
  S3_BUCKET="${S3_BUCKET:-photo-platform}"
  S3_REGION="${S3_REGION:-us-east-1}"
  REDIS_PORT="${REDIS_PORT:-16379}"
  PG_PORT="${PG_PORT:-15432}"
  PG_USER="${PG_USER:-platform}"
  PG_PASSWORD="${PG_PASSWORD:-platform}"
  CASSANDRA_PORT="${CASSANDRA_PORT:-19042}"
  OPENSEARCH_PORT="${OPENSEARCH_PORT:-19200}"
  OPENSEARCH_TRANSPORT_PORT="${OPENSEARCH_TRANSPORT_PORT:-19300}"
  export OPENSEARCH_PORT OPENSEARCH_TRANSPORT_PORT CASSANDRA_PORT KAFKA_PORT S3_PORT S3_ACCESS_KEY S3_SECRET_KEY S3_BUCKET S3_REGION REDIS_PORT PG_PORT PG_USER PG_PASSWORD
}
