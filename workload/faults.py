"""Bad events, as real pipelines receive them: broken lines, wrong shapes, clock skew, re-delivery.

A fixed fraction of the delivered records is bad, spread over the kinds in `BAD_KINDS` with exact
counts. Each bad record is derived from a valid event (a template). Every kind but `duplicate`
fails `contracts.validation.validate_line` at the record's produced time; a duplicate is a byte
copy of a valid event delivered again later in the same produced hour, which only the event_id
check at ingestion catches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import orjson

from contracts.catalog import CONTRACTS_BY_TYPE
from contracts.timestamps import parse_timestamp
from contracts.validation import validate_line
from ingestion.landing import UNPARSED_TYPE
from workload.config import BAD_KINDS, WorkloadConfig
from workload.events import EPOCH, dumps_line, format_ms, ms_to_datetime, random_uuids
from workload.sampling import DAY_MS, HOUR_MS
from workload.vocab import UNKNOWN_EVENT_TYPES

ENVELOPE_FIELDS = ("event_id", "event_type", "schema_version", "occurred_at", "producer")
GARBAGE_LINES = (
    b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",
    b"null,null,null",
    b"undefined",
)


@dataclass(frozen=True)
class BadRecord:
    """A bad line and where it lands: `event_type` is what the sink would file it under."""

    produced_ms: int
    event_type: str
    line: bytes
    kind: str
    detail: str  # the field that is wrong, or how the line is broken


def bad_count(n_valid: int, bad_fraction: float) -> int:
    """Bad records so that bad / (valid + bad) is bad_fraction, to within one record."""
    return round(bad_fraction * n_valid / (1.0 - bad_fraction))


def apportion(total: int, weights: tuple[float, ...]) -> list[int]:
    """Split `total` by `weights` exactly (largest remainder; ties to the earlier kind)."""
    w = np.asarray(weights, dtype=float)
    if total == 0 or w.sum() == 0:
        return [0] * len(w)
    quotas = total * w / w.sum()
    counts = np.floor(quotas).astype(int)
    remainders = quotas - counts
    for i in np.argsort(-remainders, kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    return [int(c) for c in counts]


def planned_counts(n_valid: int, config: WorkloadConfig) -> dict[str, int]:
    """How many bad records of each kind a stream of `n_valid` valid events gets."""
    total = bad_count(n_valid, config.bad_fraction)
    return dict(zip(BAD_KINDS, apportion(total, config.bad_kind_weights), strict=True))


def inject_faults(
    config: WorkloadConfig,
    rng: np.random.Generator,
    lines: list[bytes],
    produced_ms: np.ndarray,
) -> list[BadRecord]:
    """The bad records for a stream of valid event `lines` produced at `produced_ms`.

    Exactly `planned_counts(len(lines), config)` of each kind.
    """
    counts = planned_counts(len(lines), config)
    maker = _Maker(config, rng, lines, produced_ms, sum(counts.values()))
    out: list[BadRecord] = []
    for kind in BAD_KINDS:
        made = 0
        while made < counts[kind]:
            record = maker.make(kind, int(rng.integers(len(lines))))
            if record is not None:
                out.append(record)
                made += 1
    return out


class _Maker:
    def __init__(
        self,
        config: WorkloadConfig,
        rng: np.random.Generator,
        lines: list[bytes],
        produced_ms: np.ndarray,
        expected: int,
    ) -> None:
        self.config = config
        self.rng = rng
        self.lines = lines
        self.produced_ms = produced_ms
        self.event_ids = iter(random_uuids(rng, expected))

    def _event_id(self) -> str:
        event_id = next(self.event_ids, None)
        return event_id if event_id is not None else random_uuids(self.rng, 1)[0]

    def make(self, kind: str, template: int) -> BadRecord | None:
        """One bad record from `template`, or None when this template does not suit the kind."""
        if kind == "duplicate":
            return self._duplicate(template)
        event = orjson.loads(self.lines[template])
        event_type = str(event["event_type"])
        event["event_id"] = self._event_id()
        produced = min(
            int(self.produced_ms[template]) + int(self.rng.integers(0, 5_000)),
            self.config.end_ms - 1,
        )
        line: bytes
        if kind == "malformed_json":
            line, event_type, detail = self._malformed(event, event_type)
        elif kind == "missing_field":
            fields = list(ENVELOPE_FIELDS) + [
                f.name for f in CONTRACTS_BY_TYPE[event_type].fields if f.required
            ]
            detail = fields[int(self.rng.integers(len(fields)))]
            del event[detail]
            line = dumps_line(event)
        elif kind == "mistyped_field":
            detail = self._mistype(event)
            line = dumps_line(event)
        elif kind == "unknown_type":
            event_type = UNKNOWN_EVENT_TYPES[int(self.rng.integers(len(UNKNOWN_EVENT_TYPES)))]
            event["event_type"] = event_type
            detail = f"event_type {event_type}"
            line = dumps_line(event)
        elif kind == "future_timestamp":
            skew = 2 * DAY_MS + int(self.rng.integers(0, 5 * DAY_MS))
            occurred = np.array([produced + skew], dtype=np.int64)
            event["occurred_at"] = format_ms(occurred)[0]
            if "expires_at" in event:
                event["expires_at"] = format_ms(occurred + DAY_MS)[0]
            detail = f"occurred_at {skew // HOUR_MS} h after produced"
            line = dumps_line(event)
        else:
            raise ValueError(f"unknown bad kind {kind!r}")
        if not validate_line(line, now=ms_to_datetime(produced)):
            return None  # never expected; keeps the guarantee that bad lines fail validation
        return BadRecord(produced, event_type, line, kind, detail)

    def _malformed(self, event: dict[str, Any], event_type: str) -> tuple[bytes, str, str]:
        line = dumps_line(event)
        style = self.rng.random()
        if style < 0.1:
            garbage = GARBAGE_LINES[int(self.rng.integers(len(GARBAGE_LINES)))]
            return garbage, UNPARSED_TYPE, "not JSON"
        if style < 0.6:
            cut = int(self.rng.integers(1, len(line) - 1))
            return line[:cut], event_type, f"truncated at byte {cut}"
        # garbled: a structural byte replaced, as a broken client serializer would
        positions = [i for i, b in enumerate(line) if b in b'{}:,"']
        at = positions[int(self.rng.integers(len(positions)))]
        garbled = line[:at] + b";" + line[at + 1 :]
        try:
            orjson.loads(garbled)
        except orjson.JSONDecodeError:
            return garbled, event_type, f"garbled byte {at}"
        cut = len(line) // 2
        return line[:cut], event_type, f"truncated at byte {cut}"

    def _mistype(self, event: dict[str, Any]) -> str:
        """Turn one field into the wrong JSON type; returns its name."""
        options = [
            name
            for name, value in event.items()
            if name not in ("event_id", "event_type")
            and (type(value) in (int, bool) or name in ("occurred_at", "hashtags", "producer"))
        ]
        name = options[int(self.rng.integers(len(options)))]
        value = event[name]
        if name == "occurred_at":
            event[name] = (parse_timestamp(value) - EPOCH) // timedelta(milliseconds=1)  # epoch ms
        elif name == "hashtags":
            event[name] = ",".join(value)  # a string instead of an array
        elif name == "producer":
            event[name] = 1
        elif type(value) is bool:
            event[name] = "true" if value else "false"
        else:
            event[name] = str(value)  # e.g. user_id as a string
        return name

    def _duplicate(self, template: int) -> BadRecord | None:
        original = int(self.produced_ms[template])
        hour_end = min((original // HOUR_MS + 1) * HOUR_MS, self.config.end_ms)
        if hour_end - original < 2:
            return None
        produced = int(self.rng.integers(original + 1, hour_end))
        event = orjson.loads(self.lines[template])
        event_type, event_id = str(event["event_type"]), str(event["event_id"])
        return BadRecord(produced, event_type, self.lines[template], "duplicate", event_id)
