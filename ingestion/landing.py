"""The landing zone's layout: the files an S3 sink connector writes.

    <prefix>/dt=YYYY-MM-DD/hour=HH/event_type=<type>/part-<batch>.jsonl

Files are partitioned by the hour the record was *produced* (the connector's record time), not by
the event's `occurred_at`, so late and bad events land in the hour they arrived; the event type
comes from the record (`_unparsed` when the line could not be read at all).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

PARTITION_FORMAT = "%Y-%m-%d-%H:%M"  # Dagster's hourly partition keys
UNPARSED_TYPE = "_unparsed"

_KEY_RE = re.compile(
    r"dt=(?P<date>\d{4}-\d{2}-\d{2})/hour=(?P<hour>\d{2})/event_type=(?P<event_type>[^/]+)/(?P<name>[^/]+)$"
)


def hour_prefix(prefix: str, hour: datetime) -> str:
    hour = hour.astimezone(UTC)
    return f"{prefix.rstrip('/')}/dt={hour:%Y-%m-%d}/hour={hour:%H}/"


def file_key(prefix: str, produced_hour: datetime, event_type: str, batch_id: str) -> str:
    safe_type = event_type if re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", event_type) else UNPARSED_TYPE
    return f"{hour_prefix(prefix, produced_hour)}event_type={safe_type}/part-{batch_id}.jsonl"


def partition_key_of(hour: datetime) -> str:
    return (
        hour.astimezone(UTC).replace(minute=0, second=0, microsecond=0).strftime(PARTITION_FORMAT)
    )


def hour_of_partition(partition_key: str) -> datetime:
    return datetime.strptime(partition_key, PARTITION_FORMAT).replace(tzinfo=UTC)


def partition_key_of_file(key: str) -> str | None:
    """The hourly partition a landing file belongs to, or None for a key outside the layout."""
    match = _KEY_RE.search(key)
    if not match:
        return None
    return f"{match['date']}-{match['hour']}:00"
