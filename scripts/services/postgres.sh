#!/usr/bin/env bash
# Private PostgreSQL cluster for the "services" profile: data in
# $SERVICES_DIR/postgres/data, owned by the `postgres` OS user, TCP on
# 127.0.0.1:${PG_PORT:-15432}, unix socket in $SERVICES_DIR/postgres/run.
# Debian's postgresql package provides the binaries; its system cluster
# (port 5432) is never used or touched.
#
#   postgres.sh install   apt-get install postgresql (skipped when installed)
#   postgres.sh start     initdb on first start, start, wait for pg_isready,
#                         create role ${PG_USER:-platform} and databases
#                         dagster, mlflow, feast (idempotent)
#   postgres.sh stop      fast shutdown (SIGINT), SIGKILL after STOP_TIMEOUT
#   postgres.sh status    exit 0 when pg_isready answers
set -euo pipefail
SVC_NAME=postgres
# shellcheck source=scripts/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_PORT="${PG_PORT:-15432}"
PG_USER="${PG_USER:-platform}"
PG_PASSWORD="${PG_PASSWORD:-platform}"
PG_DATABASES="${PG_DATABASES:-dagster mlflow feast}"
PG_OS_USER="${PG_OS_USER:-postgres}"
PG_HOME="$SERVICES_DIR/postgres"
PGDATA_DIR="$PG_HOME/data"
PG_RUN="$PG_HOME/run"
LOGFILE="$PG_HOME/postgres.log"
PIDFILE="$PGDATA_DIR/postmaster.pid" # written and removed by postgres itself

# pg_bindir: the newest /usr/lib/postgresql/<version>/bin that has the server
# (a client-only version directory has psql but no initdb).
pg_bindir() {
    local d
    for d in $(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -type d -name bin 2>/dev/null | sort -rV); do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]]; then
            printf '%s' "$d"
            return 0
        fi
    done
    return 1
}

as_pg() { runuser -u "$PG_OS_USER" -- "$@"; }

pg_ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d postgres -t 2; }

cmd_install() {
    local t0 bin
    if bin="$(pg_bindir)" && id "$PG_OS_USER" >/dev/null 2>&1; then
        svc_log "already installed: $("$bin/postgres" --version)"
        return 0
    fi
    t0="$(now_s)"
    apt_install postgresql
    bin="$(pg_bindir)" || die "no /usr/lib/postgresql/*/bin/initdb after apt-get install postgresql"
    svc_log "installed $("$bin/postgres" --version) in $(elapsed "$t0")s"
}

# The postgres OS user must be able to reach $PG_HOME. Add search (x) permission
# for "other" on each ancestor that lacks it (no read permission is added).
ensure_traversable() {
    local dir="$PG_HOME" path=""
    local IFS=/ part
    read -ra parts <<<"${dir#/}"
    for part in "${parts[@]}"; do
        path="$path/$part"
        [[ -d "$path" ]] || break
        if ! as_pg test -x "$path"; then
            svc_log "granting search permission (o+x) on $path so user $PG_OS_USER can reach $PG_HOME"
            chmod o+x "$path"
        fi
    done
}

write_conf() {
    # Rewritten on every start so PG_PORT / paths follow the environment.
    cat >"$PGDATA_DIR/services.conf" <<EOF
# written by scripts/services/postgres.sh; edits are overwritten on start
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
max_connections = 100
shared_buffers = 128MB
fsync = on
logging_collector = off
log_min_messages = warning
log_connections = off
EOF
    chown "$PG_OS_USER:" "$PGDATA_DIR/services.conf"
    grep -q "^include_if_exists = 'services.conf'" "$PGDATA_DIR/postgresql.conf" ||
        echo "include_if_exists = 'services.conf'" >>"$PGDATA_DIR/postgresql.conf"
}

init_cluster() {
    [[ -f "$PGDATA_DIR/PG_VERSION" ]] && return 0
    svc_log "initdb $PGDATA_DIR"
    rm -rf "$PGDATA_DIR"
    mkdir -p "$PGDATA_DIR"
    chown "$PG_OS_USER:" "$PGDATA_DIR"
    chmod 700 "$PGDATA_DIR"
    local pwfile
    pwfile="$(mktemp "$PG_HOME/.pw.XXXXXX")"
    # The superuser gets a random password; it is only ever used over the
    # private unix socket with peer authentication.
    head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$pwfile"
    chown "$PG_OS_USER:" "$pwfile"
    if ! as_pg "$BIN/initdb" -D "$PGDATA_DIR" -U postgres --pwfile="$pwfile" \
        -E UTF8 --no-locale --auth-local=peer --auth-host=scram-sha-256 >>"$LOGFILE" 2>&1; then
        rm -f "$pwfile"
        fail_with_log "$LOGFILE" "initdb failed"
    fi
    rm -f "$pwfile"
}

psql_super() {
    as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -U postgres -d postgres "$@"
}

create_role_and_dbs() {
    local db
    # Role: create or update its password (so PG_PASSWORD changes apply).
    psql_super -v u="$PG_USER" -v p="$PG_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'u')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'u') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'u', :'p') \gexec
SQL
    for db in $PG_DATABASES; do
        psql_super -v u="$PG_USER" -v d="$db" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'d', :'u')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'d') \gexec
SELECT format('GRANT ALL ON DATABASE %I TO %I', :'d', :'u') \gexec
SQL
    done
}

cmd_start() {
    BIN="$(pg_bindir)" || die "PostgreSQL is not installed: run $0 install"
    id "$PG_OS_USER" >/dev/null 2>&1 || die "OS user $PG_OS_USER does not exist (run $0 install)"
    mkdir -p "$PG_HOME"
    local pid
    pid="$(read_pid "$PIDFILE")"
    if pid_alive "$pid"; then
        svc_log "already running (pid $pid) on 127.0.0.1:$PG_PORT"
        return 0
    fi
    require_port_free "$PG_PORT" postgres
    local t0
    t0="$(now_s)"
    ensure_traversable
    chmod 755 "$PG_HOME"
    touch "$LOGFILE"
    FAIL_LOG_OFFSET="$(file_size "$LOGFILE")" # failures show this start's lines only
    chown "$PG_OS_USER:" "$LOGFILE"
    mkdir -p "$PG_RUN"
    chown "$PG_OS_USER:" "$PG_RUN"
    chmod 700 "$PG_RUN"
    init_cluster
    write_conf
    # pg_ctl detaches the postmaster into its own session and writes
    # postmaster.pid; -w waits until it accepts connections.
    if ! as_pg "$BIN/pg_ctl" -D "$PGDATA_DIR" -l "$LOGFILE" -w -t "$START_TIMEOUT" start >"$PG_HOME/pg_ctl.out" 2>&1 9>&-; then
        tail_log "$PG_HOME/pg_ctl.out"
        fail_with_log "$LOGFILE" "pg_ctl start failed"
    fi
    local i
    for ((i = 0; i < START_TIMEOUT * 2; i++)); do
        pg_ready && break
        sleep 0.5
    done
    pg_ready || fail_with_log "$LOGFILE" "pg_isready does not answer on 127.0.0.1:$PG_PORT"
    create_role_and_dbs || fail_with_log "$LOGFILE" "creating role/databases failed"
    svc_log "ready on postgresql://$PG_USER:***@127.0.0.1:$PG_PORT/{${PG_DATABASES// /,}} (pid $(read_pid "$PIDFILE"), $(elapsed "$t0")s)"
}

cmd_stop() {
    BIN="$(pg_bindir)" || true
    # SIGINT = PostgreSQL's "fast" shutdown (rolls back sessions, checkpoints).
    stop_pidfile "$PIDFILE" postgres INT
}

cmd_status() {
    BIN="$(pg_bindir)" || {
        echo "postgres: not installed"
        return 3
    }
    local pid
    pid="$(read_pid "$PIDFILE")"
    if pid_alive "$pid" && pg_ready; then
        echo "postgres: running (pid $pid) postgresql://$PG_USER@127.0.0.1:$PG_PORT/"
        return 0
    fi
    if pid_alive "$pid"; then
        echo "postgres: process $pid alive but pg_isready fails on $PG_PORT"
        return 1
    fi
    echo "postgres: stopped"
    return 3
}

case "${1:-}" in
install)
    svc_lock postgres
    cmd_install
    ;;
start)
    svc_lock postgres
    cmd_start
    ;;
stop)
    svc_lock postgres
    cmd_stop
    ;;
status) cmd_status ;;
*) usage_exit "install|start|stop|status" ;;
esac
