#!/usr/bin/env bash
# S3-compatible object store for the "services" profile: MinIO built from
# source with `go install` through the Go module proxy, listening on
# 127.0.0.1:${S3_PORT:-19000}, data in $SERVICES_DIR/minio/data.
#
#   minio.sh install   go install github.com/minio/minio@$MINIO_VERSION into
#                      $SERVICES_DIR/bin (skipped when that version is built);
#                      Go module + build caches live in $SERVICES_DIR/cache/go
#   minio.sh start     start, wait for /minio/health/ready, create the bucket
#                      ${S3_BUCKET:-photo-platform} (idempotent)
#   minio.sh stop      SIGTERM, SIGKILL after STOP_TIMEOUT
#   minio.sh status    exit 0 when /minio/health/ready answers 200
#
# S3_SERVER=moto swaps MinIO for moto's standalone server
# (.venv/bin/moto_server, from the project's dev dependencies): same ports,
# same bucket, in-memory data (lost on stop). Only a stand-in for machines
# where MinIO cannot be built.
set -euo pipefail
SVC_NAME=minio
# shellcheck source=scripts/services/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# MinIO publishes no semver tags, so the Go module proxy only serves
# pseudo-versions; this one is github.com/minio/minio@latest on 2026-11-24
# (commit 7aac2a2c5b7c of 2026-02-12).
MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"
S3_SERVER="${S3_SERVER:-minio}"
S3_PORT="${S3_PORT:-19000}"
S3_CONSOLE_PORT="${S3_CONSOLE_PORT:-19001}"
S3_ACCESS_KEY="${S3_ACCESS_KEY:-minioadmin}"
S3_SECRET_KEY="${S3_SECRET_KEY:-minioadmin-secret}"
S3_BUCKET="${S3_BUCKET:-photo-platform}"
S3_REGION="${S3_REGION:-us-east-1}"

MINIO_HOME="$SERVICES_DIR/minio"
MINIO_BIN="$SERVICES_DIR/bin/minio"
MINIO_STAMP="$SERVICES_DIR/bin/.minio.version"
GO_CACHE_DIR="$SERVICES_DIR/cache/go"
PIDFILE="$MINIO_HOME/minio.pid"
LOGFILE="$MINIO_HOME/minio.log"
BUILD_LOG="$MINIO_HOME/build.log"
MOTO_BIN="${MOTO_SERVER_BIN:-$REPO_ROOT/.venv/bin/moto_server}"
ENDPOINT="http://127.0.0.1:$S3_PORT"

case "$S3_SERVER" in
minio | moto) ;;
*) die "S3_SERVER must be minio or moto (got: $S3_SERVER)" ;;
esac

# s3curl ARGS...: curl with AWS SigV4 signing (curl >= 7.75).
s3curl() {
    curl -sS --max-time 30 --aws-sigv4 "aws:amz:$S3_REGION:s3" \
        --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" "$@"
}

s3_ready() {
    if [[ "$S3_SERVER" == minio ]]; then
        curl -fsS --max-time 3 -o /dev/null "$ENDPOINT/minio/health/ready"
    else
        curl -fsS --max-time 3 -o /dev/null "$ENDPOINT/moto-api/"
    fi
}

ensure_bucket() {
    local code
    code="$(s3curl -o /dev/null -w '%{http_code}' -I "$ENDPOINT/$S3_BUCKET")" || true
    case "$code" in
    200)
        svc_log "bucket $S3_BUCKET exists"
        return 0
        ;;
    404) ;;
    *) fail_with_log "$LOGFILE" "HEAD bucket $S3_BUCKET answered HTTP ${code:-none}" ;;
    esac
    local out
    out="$(mktemp)"
    code="$(s3curl -o "$out" -w '%{http_code}' -X PUT "$ENDPOINT/$S3_BUCKET")" || true
    if [[ "$code" != 200 ]]; then
        cat "$out" >&2
        rm -f "$out"
        fail_with_log "$LOGFILE" "creating bucket $S3_BUCKET failed (HTTP ${code:-none})"
    fi
    rm -f "$out"
    svc_log "bucket $S3_BUCKET created"
}

cmd_install() {
    command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
    if [[ "$S3_SERVER" == moto ]]; then
        [[ -x "$MOTO_BIN" ]] || die "S3_SERVER=moto needs $MOTO_BIN (install the project's dev dependencies: moto[server])"
        svc_log "using moto_server at $MOTO_BIN (nothing to install)"
        return 0
    fi
    if [[ -x "$MINIO_BIN" && "$(cat "$MINIO_STAMP" 2>/dev/null || true)" == "$MINIO_VERSION" ]]; then
        svc_log "already installed: minio $MINIO_VERSION at $MINIO_BIN"
        return 0
    fi
    # Debian 12's golang (1.19) is too old for MinIO (go.mod says 1.24).
    command -v go >/dev/null 2>&1 || die "the go toolchain (>= 1.24) is needed to build MinIO and PATH has no go (S3_SERVER=moto runs moto_server instead)"
    mkdir -p "$MINIO_HOME" "$SERVICES_DIR/bin" "$GO_CACHE_DIR/mod" "$GO_CACHE_DIR/build"
    svc_log "building github.com/minio/minio@$MINIO_VERSION with $(go version | awk '{print $3}') (about 3 minutes on 2 cores from an empty cache; log: $BUILD_LOG)"
    local t0
    t0="$(now_s)"
    # CGO off: a static binary and no C toolchain needed. Module and build
    # caches stay under SERVICES_DIR so a rebuild (e.g. after a version bump)
    # is incremental.
    if ! env GOBIN="$SERVICES_DIR/bin" GOMODCACHE="$GO_CACHE_DIR/mod" GOCACHE="$GO_CACHE_DIR/build" \
        CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" \
        go install "github.com/minio/minio@$MINIO_VERSION" >"$BUILD_LOG" 2>&1; then
        LOG_TAIL_LINES=40 tail_log "$BUILD_LOG"
        die "go install github.com/minio/minio@$MINIO_VERSION failed (S3_SERVER=moto runs moto_server instead)"
    fi
    echo "$MINIO_VERSION" >"$MINIO_STAMP"
    svc_log "built $MINIO_BIN in $(elapsed "$t0")s"
}

cmd_start() {
    mkdir -p "$MINIO_HOME"
    if pidfile_alive "$PIDFILE"; then
        svc_log "already running (pid $(read_pid "$PIDFILE")) on $ENDPOINT"
        return 0
    fi
    require_port_free "$S3_PORT" "$S3_SERVER S3 API"
    local t0
    t0="$(now_s)"
    if [[ "$S3_SERVER" == minio ]]; then
        [[ -x "$MINIO_BIN" ]] || die "MinIO is not installed: run $0 install"
        require_port_free "$S3_CONSOLE_PORT" "minio console"
        ((${#S3_SECRET_KEY} >= 8)) || die "S3_SECRET_KEY must have at least 8 characters for MinIO"
        mkdir -p "$MINIO_HOME/data" "$MINIO_HOME/certs"
        MINIO_ROOT_USER="$S3_ACCESS_KEY" MINIO_ROOT_PASSWORD="$S3_SECRET_KEY" \
            MINIO_BROWSER=off MINIO_UPDATE=off MINIO_REGION="$S3_REGION" \
            start_daemon "$PIDFILE" "$LOGFILE" \
            "$MINIO_BIN" server \
            --address "127.0.0.1:$S3_PORT" \
            --console-address "127.0.0.1:$S3_CONSOLE_PORT" \
            --certs-dir "$MINIO_HOME/certs" \
            "$MINIO_HOME/data"
    else
        [[ -x "$MOTO_BIN" ]] || die "S3_SERVER=moto needs $MOTO_BIN"
        start_daemon "$PIDFILE" "$LOGFILE" "$MOTO_BIN" -H 127.0.0.1 -p "$S3_PORT"
    fi
    wait_ready "$PIDFILE" "$LOGFILE" "$START_TIMEOUT" "$S3_SERVER" s3_ready
    ensure_bucket
    svc_log "ready on $ENDPOINT (s3://$S3_BUCKET, pid $(read_pid "$PIDFILE"), $(elapsed "$t0")s)"
}

cmd_stop() { stop_pidfile "$PIDFILE" "$S3_SERVER" TERM; }

cmd_status() {
    if pidfile_alive "$PIDFILE" && s3_ready; then
        echo "$S3_SERVER: running (pid $(read_pid "$PIDFILE")) $ENDPOINT s3://$S3_BUCKET"
        return 0
    fi
    if pidfile_alive "$PIDFILE"; then
        echo "$S3_SERVER: process $(read_pid "$PIDFILE") alive but not ready on $ENDPOINT"
        return 1
    fi
    echo "$S3_SERVER: stopped"
    return 3
}

case "${1:-}" in
install)
    svc_lock minio
    cmd_install
    ;;
start)
    svc_lock minio
    cmd_start
    ;;
stop)
    svc_lock minio
    cmd_stop
    ;;
status) cmd_status ;;
*) usage_exit "install|start|stop|status" ;;
esac
