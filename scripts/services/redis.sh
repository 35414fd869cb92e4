#!/usr/bin/env bash
# Private Redis instance on 127.0.0.1:${REDIS_PORT:-16379} for the "services"
# profile. Debian's redis-server package provides the binary only; the system
# service (port 6379) is never used or touched.
#
#   redis.sh install   apt-get install redis-server (skipped when installed)
#   redis.sh start     start the private instance, wait for PING
#   redis.sh stop      SIGTERM (Redis saves and exits), SIGKILL after STOP_TIMEOUT
#   redis.sh status    exit 0 when running and answering PING
set -euo pipefail
SVC_NAME=redis
# shellcheck source=scripts/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REDIS_PORT="${REDIS_PORT:-16379}"
REDIS_HOME="$SERVICES_DIR/redis"
PIDFILE="$REDIS_HOME/redis.pid"
LOGFILE="$REDIS_HOME/redis.log"

redis_ping() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -qx PONG; }

cmd_install() {
    if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
        svc_log "already installed: $(redis-server --version | head -n 1)"
        return 0
    fi
    local t0
    t0="$(now_s)"
    apt_install redis-server redis-tools
    command -v redis-server >/dev/null 2>&1 || die "redis-server not found after apt-get install"
    svc_log "installed $(redis-server --version | head -n 1) in $(elapsed "$t0")s"
}

cmd_start() {
    command -v redis-server >/dev/null 2>&1 || die "redis-server is not installed: run $0 install"
    mkdir -p "$REDIS_HOME/data"
    if pidfile_alive "$PIDFILE"; then
        svc_log "already running (pid $(read_pid "$PIDFILE")) on 127.0.0.1:$REDIS_PORT"
        return 0
    fi
    require_port_free "$REDIS_PORT" redis
    local t0
    t0="$(now_s)"
    # No config file: every setting on the command line. AOF keeps data across
    # restarts even after a SIGKILL; RDB snapshots are written on shutdown.
    # zset-max-listpack-entries 64 (default 128): feeds are sorted sets, and a
    # listpack insert scans the whole list; from 64 entries a skiplist inserts
    # with about a third less server CPU, for about 125 instead of 40 bytes per
    # entry (a feed at the 800 cap is a skiplist either way, about 96 KB).
    # docs/services.md ("Redis") and docs/benchmarks.md ("Fan-out").
    start_daemon "$PIDFILE" "$LOGFILE" \
        redis-server \
        --port "$REDIS_PORT" \
        --bind 127.0.0.1 \
        --protected-mode yes \
        --dir "$REDIS_HOME/data" \
        --daemonize no \
        --logfile "" \
        --appendonly yes \
        --save "3600 1 300 100 60 10000" \
        --zset-max-listpack-entries 64
    wait_ready "$PIDFILE" "$LOGFILE" "$START_TIMEOUT" redis redis_ping
    svc_log "ready on redis://127.0.0.1:$REDIS_PORT/0 (pid $(read_pid "$PIDFILE"), $(elapsed "$t0")s)"
}

cmd_stop() { stop_pidfile "$PIDFILE" redis TERM; }

cmd_status() {
    if pidfile_alive "$PIDFILE" && redis_ping; then
        echo "redis: running (pid $(read_pid "$PIDFILE")) redis://127.0.0.1:$REDIS_PORT/0"
        return 0
    fi
    if pidfile_alive "$PIDFILE"; then
        echo "redis: process $(read_pid "$PIDFILE") alive but not answering PING on $REDIS_PORT"
        return 1
    fi
    echo "redis: stopped"
    return 3
}

case "${1:-}" in
install)
    svc_lock redis
    cmd_install
    ;;
start)
    svc_lock redis
    cmd_start
    ;;
stop)
    svc_lock redis
    cmd_stop
    ;;
status) cmd_status ;;
*) usage_exit "install|start|stop|status" ;;
esac
