#!/usr/bin/env bash
# End-to-end smoke check of the running "services" profile with each
# service's own client (no Python venv needed):
#   Kafka     create a topic, produce one message, consume it back (Java tools)
#   S3        PUT an object, list the bucket, GET it back (curl, SigV4)
#   Redis     SET / GET (redis-cli)
#   Postgres  select 1 as ${PG_USER:-platform} over TCP in each database (psql)
#   Cassandra the CQL port answers a protocol OPTIONS request
#   OpenSearch index a document (refresh=wait_for), search it back, drop the index (curl)
# Exit 0 only when all pass.
set -euo pipefail
SVC_NAME=smoke
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/services/lib.sh
source "$HERE/lib.sh"

service_defaults

token="smoke-$(date +%s)-$$"
failed=0
ok() { printf 'ok    %-8s %s\n' "$1" "$2"; }
bad() {
    printf 'FAIL  %-8s %s\n' "$1" "$2"
    failed=1
}

# --- Kafka
kafka_smoke() {
    local K="$HERE/kafka.sh" bs="127.0.0.1:$KAFKA_PORT" topic="services-$token" got rc=0
    # Called in an `if`, where set -e is off: every step checks explicitly.
    bash "$K" run org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" \
        --create --topic "$topic" --partitions 1 --replication-factor 1 >/dev/null || return 1
    echo "$token" | bash "$K" run org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$bs" --topic "$topic" || return 1
    got="$(bash "$K" run org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$bs" \
        --topic "$topic" --from-beginning --max-messages 1 --timeout-ms 20000 2>/dev/null || true)"
    [[ "$got" == "$token" ]] || rc=1
    bash "$K" run org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --delete --topic "$topic" >/dev/null || true
    return "$rc"
}
if kafka_smoke; then ok kafka "topic services-$token: created, produced, consumed, deleted"; else bad kafka "produce/consume on 127.0.0.1:$KAFKA_PORT"; fi

# --- S3
s3() { curl -fsS --max-time 30 --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" "$@"; }
s3_smoke() {
    local base="http://127.0.0.1:$S3_PORT/$S3_BUCKET" tmp rc=0
    tmp="$(mktemp)"
    printf '%s' "$token" >"$tmp"
    # Upload with -T: curl 7.88 signs a --data-binary PUT wrongly
    # (SignatureDoesNotMatch), an upload file is signed correctly.
    s3 -T "$tmp" "$base/smoke/$token.txt" >/dev/null || rc=1
    rm -f "$tmp"
    ((rc == 0)) || return 1
    # curl 7.88 does not sort or encode the query for SigV4: keep parameters
    # in alphabetical order and percent-encoded.
    s3 "$base?list-type=2&prefix=smoke%2F" | grep -q "<Key>smoke/$token.txt</Key>" || return 1
    [[ "$(s3 "$base/smoke/$token.txt")" == "$token" ]]
}
if s3_smoke; then ok s3 "s3://$S3_BUCKET/smoke/$token.txt put, listed, read back"; else bad s3 "put/list/get on http://127.0.0.1:$S3_PORT"; fi

# --- Redis
if [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" set services:smoke "$token" 2>&1)" == OK &&
    "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" get services:smoke 2>&1)" == "$token" ]]; then
    ok redis "SET/GET services:smoke"
else
    bad redis "SET/GET on 127.0.0.1:$REDIS_PORT"
fi

# --- Cassandra (a CQL protocol OPTIONS request answered with SUPPORTED)
if bash "$HERE/cassandra.sh" status >/dev/null; then
    ok cassandra "CQL answers on 127.0.0.1:$CASSANDRA_PORT"
else
    bad cassandra "CQL on 127.0.0.1:$CASSANDRA_PORT"
fi

# --- OpenSearch
# Sets os_msg to what went wrong. The cleanup is part of the check: an index that cannot be
# dropped is reported (and fails the check), never announced as deleted.
os_smoke() {
    local base="http://127.0.0.1:$OPENSEARCH_PORT" index="smoke-$token" found code
    os_msg=""
    if ! curl -fsS --max-time 30 -H 'Content-Type: application/json' -X PUT \
        "$base/$index/_doc/1?refresh=wait_for" -d "{\"word\":\"$token\"}" >/dev/null; then
        os_msg="indexing a document into $index failed"
    elif ! found="$(curl -fsS --max-time 30 -H 'Content-Type: application/json' "$base/$index/_search" \
        -d "{\"query\":{\"term\":{\"word.keyword\":\"$token\"}}}")"; then
        os_msg="searching $index failed"
    elif [[ "$found" != *'"_id":"1"'* ]]; then
        os_msg="searching $index did not find the document"
    fi
    code="$(curl -sS --max-time 30 -o /dev/null -w '%{http_code}' -X DELETE "$base/$index")" || true
    case "$code" in
        200) ;;
        404) [[ -n "$os_msg" ]] || os_msg="$index was gone before it was dropped" ;; # never made
        *) os_msg="${os_msg:+$os_msg; }dropping $index failed (HTTP ${code:-000}): it may be left on the node" ;;
    esac
    [[ -z "$os_msg" ]]
}
if os_smoke; then
    ok opensearch "index $token: indexed, searched, dropped"
else
    bad opensearch "127.0.0.1:$OPENSEARCH_PORT: $os_msg"
fi

# --- PostgreSQL
for db in dagster mlflow feast; do
    if [[ "$(PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=10 psql -X -At -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d "$db" -c 'select 1' 2>&1)" == 1 ]]; then
        ok postgres "select 1 as $PG_USER in $db over TCP"
    else
        bad postgres "select 1 as $PG_USER in $db on 127.0.0.1:$PG_PORT"
    fi
done

if ((failed)); then
    svc_log "some checks failed"
    exit 1
fi
svc_log "all smoke checks passed"
