#!/usr/bin/env bash
# The "services" profile in one command: PostgreSQL, Redis, MinIO (S3), Kafka,
# Cassandra and OpenSearch on loopback, all state under $SERVICES_DIR (default <repo>/.services).
#
#   all.sh up       install (idempotent) + start all six, wait for each to be
#                   ready, write $SERVICES_DIR/services.env, print the URLs
#   all.sh down     stop all six (each by its PID file)
#   all.sh status   one line per service; exit 0 only when all six are up
#   all.sh env      only (re)write $SERVICES_DIR/services.env
#
# Use the env file with:  set -a; . .services/services.env; set +a
set -euo pipefail
SVC_NAME=all
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/services/lib.sh
source "$HERE/lib.sh"

service_defaults

# Start order: the quick ones first, so a broken machine fails fast; stop in
# reverse.
SERVICES=(postgres redis minio kafka cassandra opensearch)
ENV_FILE="$SERVICES_DIR/services.env"

urlencode() {
    local s="$1" out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c="${s:i:1}"
        case "$c" in
        [a-zA-Z0-9.~_-]) out+="$c" ;;
        *) out+="$(printf '%%%02X' "'$c")" ;;
        esac
    done
    printf '%s' "$out"
}

write_env() {
    local u p pg
    u="$(urlencode "$PG_USER")"
    p="$(urlencode "$PG_PASSWORD")"
    pg="postgresql://$u:$p@127.0.0.1:$PG_PORT"
    local tmp="$ENV_FILE.tmp"
    cat >"$tmp" <<EOF
# written by scripts/services/all.sh; local loopback services only
KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT
OBJECT_STORE_URL=s3://$S3_BUCKET
S3_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
S3_ACCESS_KEY=$S3_ACCESS_KEY
S3_SECRET_KEY=$S3_SECRET_KEY
S3_REGION=$S3_REGION
S3_BUCKET=$S3_BUCKET
REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
CASSANDRA_HOSTS=127.0.0.1:$CASSANDRA_PORT
OPENSEARCH_URL=http://127.0.0.1:$OPENSEARCH_PORT
METADATA_DB_URL=$pg/dagster
MLFLOW_DB_URL=$pg/mlflow
FEAST_REGISTRY_URL=$pg/feast
EOF
    chmod 600 "$tmp"
    mv "$tmp" "$ENV_FILE"
    svc_log "wrote $ENV_FILE"
}

url_of() {
    case "$1" in
    postgres) echo "postgresql://$PG_USER@127.0.0.1:$PG_PORT/{dagster,mlflow,feast}" ;;
    redis) echo "redis://127.0.0.1:$REDIS_PORT/0" ;;
    minio) echo "http://127.0.0.1:$S3_PORT (s3://$S3_BUCKET)" ;;
    kafka) echo "127.0.0.1:$KAFKA_PORT (PLAINTEXT)" ;;
    cassandra) echo "127.0.0.1:$CASSANDRA_PORT (CQL)" ;;
    opensearch) echo "http://127.0.0.1:$OPENSEARCH_PORT" ;;
    esac
}

cmd_up() {
    local s t0 t_all timings=()
    t_all="$(now_s)"
    for s in "${SERVICES[@]}"; do
        t0="$(now_s)"
        bash "$HERE/$s.sh" install
        local ti
        ti="$(elapsed "$t0")"
        t0="$(now_s)"
        if ! bash "$HERE/$s.sh" start; then
            svc_log "$s failed to start; the services started before it are still running (stop them with: $0 down)"
            exit 1
        fi
        timings+=("$s: install ${ti}s, start $(elapsed "$t0")s")
    done
    write_env
    svc_log "all services up in $(elapsed "$t_all")s"
    for s in "${timings[@]}"; do svc_log "  $s"; done
    for s in "${SERVICES[@]}"; do
        printf '%-9s %s\n' "$s" "$(url_of "$s")"
    done
    printf '%-9s %s\n' env "$ENV_FILE"
}

cmd_down() {
    local s rc=0 i
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        s="${SERVICES[i]}"
        bash "$HERE/$s.sh" stop || {
            svc_log "stopping $s failed"
            rc=1
        }
    done
    return "$rc"
}

cmd_status() {
    local s rc=0
    for s in "${SERVICES[@]}"; do
        bash "$HERE/$s.sh" status || rc=1
    done
    return "$rc"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
env) write_env ;;
*) usage_exit "up|down|status|env" ;;
esac
