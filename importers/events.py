"""Contract-valid events built from imported rows: stable ids, the envelope, validation.

Event ids are UUID5s of (source, event type, natural key), so importing the same file again gives
the same events: written to the same landing keys the loader skips them by address, written under
another batch they are dead-lettered as duplicates. Either way nothing is counted twice.

Every event is validated against `contracts/` when it is built, with the import time as "now",
so an importer cannot hand the pipeline an event the loader would reject.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from contracts.timestamps import format_timestamp
from contracts.validation import validate_event
from workload.events import SCHEMA_VERSION, dumps_line
from workload.generator import LandingRecord

# Fixed forever: changing it would change every imported event id.
IMPORT_NAMESPACE = uuid.UUID("5d1f3a52-8c1e-4c55-9a55-0f1d2c3b4a69")

# Platform ids are Int64; imported ids must stay below this.
MAX_ID = 2**63 - 1


class InvalidImportedEvent(ValueError):
    """An importer built an event its contract rejects (a bug, or a source value out of range)."""


_NAMESPACE_BYTES = IMPORT_NAMESPACE.bytes


def stable_event_id(source: str, event_type: str, key: object) -> str:
    """`str(uuid.uuid5(IMPORT_NAMESPACE, "<source>/<event_type>/<key>"))`, computed directly
    (uuid.uuid5 builds a UUID object per call, a third of an import's time)."""
    name = f"{source}/{event_type}/{key}".encode()
    raw = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def build_event(
    *,
    source: str,
    producer: str,
    event_type: str,
    key: object,
    occurred_at: datetime,
    payload: dict[str, Any],
) -> dict[str, Any]:
    """The event as the app would emit it: envelope first, then the payload."""
    return {
        "event_id": stable_event_id(source, event_type, key),
        "event_type": event_type,
        "schema_version": SCHEMA_VERSION,
        "occurred_at": format_timestamp(occurred_at),
        "producer": producer,
        **payload,
    }


@dataclass
class EventLog:
    """The events one import produced, all received by the platform at `received_at`.

    An import is a backfill: the records reach the landing zone when the import runs, so they
    all file under that hour (one Dagster partition), whatever their `occurred_at`.
    """

    received_at: datetime
    records: list[LandingRecord] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if self.received_at.tzinfo is None:
            raise ValueError("received_at must be timezone-aware")
        self.received_at = self.received_at.astimezone(UTC)

    def reasons(self, event: dict[str, Any]) -> list[str]:
        """Why the loader would reject this event (empty when it would load it)."""
        return validate_event(event, now=self.received_at)

    def append(self, event: dict[str, Any], *, checked: bool = False) -> None:
        """Add a valid event; an invalid one raises, naming the event and every reason.

        `checked`: the caller has just validated it with `reasons` (skips a second pass)."""
        reasons = [] if checked else self.reasons(event)
        if reasons:
            raise InvalidImportedEvent(
                f"{event['event_type']} {event['event_id']}: {'; '.join(reasons)}"
            )
        event_type = str(event["event_type"])
        self.records.append(LandingRecord(self.received_at, event_type, dumps_line(event)))
        self.counts[event_type] += 1
