"""Python validation of raw events: every reason an event is invalid, not just the first.

Producers and tests use this; bulk ingestion runs the equivalent SQL (`contracts.sql`) inside
ClickHouse. Both return the same sorted, de-duplicated list of reasons for the same input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from contracts.catalog import CONTRACTS_BY_TYPE, ENVELOPE
from contracts.spec import FieldSpec, Kind
from contracts.timestamps import is_utc_timestamp, parse_timestamp

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID_RE = re.compile(UUID_PATTERN)

EXPECTED = {
    Kind.STRING: "expected a string",
    Kind.ENUM: "expected a string",
    Kind.INT: "expected an integer",
    Kind.FLOAT: "expected a number",
    Kind.BOOL: "expected a boolean",
    Kind.UUID: "expected a UUID string",
    Kind.TIMESTAMP: "expected an ISO-8601 UTC timestamp",
    Kind.STRING_LIST: "expected an array",
    Kind.INT_LIST: "expected an array",
    Kind.OBJECT: "expected an object",
    Kind.OBJECT_LIST: "expected an array",
}

MALFORMED_JSON = "payload: malformed JSON"
NOT_AN_OBJECT = "payload: not a JSON object"


def future_reason(tolerance: timedelta) -> str:
    return f"occurred_at: more than {int(tolerance.total_seconds() // 60)} min in the future"


def validate_line(
    line: bytes | str, *, now: datetime | None = None, tolerance: timedelta = timedelta(hours=1)
) -> list[str]:
    """Reasons why one serialized event (a JSON line) is invalid; empty when it is valid."""
    try:
        payload = orjson.loads(line)
    except orjson.JSONDecodeError:
        return [MALFORMED_JSON]
    if not isinstance(payload, dict):
        return [NOT_AN_OBJECT]
    return validate_event(payload, now=now, tolerance=tolerance)


def validate_event(
    payload: Mapping[str, Any],
    *,
    now: datetime | None = None,
    tolerance: timedelta = timedelta(hours=1),
) -> list[str]:
    """Reasons why one parsed event is invalid; empty when it is valid."""
    from contracts.fast_path import FAST_CHECKS

    now = now or datetime.now(UTC)
    event_type = payload.get("event_type")
    fast = FAST_CHECKS.get(event_type) if type(event_type) is str else None
    if fast is not None and fast(payload, now + tolerance):
        return []
    return detailed_reasons(payload, now=now, tolerance=tolerance)


def detailed_reasons(
    payload: Mapping[str, Any], *, now: datetime, tolerance: timedelta
) -> list[str]:
    """Every reason, field by field: the slow path, for events the fast path rejected."""
    reasons: set[str] = set()
    for spec in ENVELOPE:
        reasons.update(_check(spec, payload, spec.name))
    occurred_at = payload.get("occurred_at")
    if (
        isinstance(occurred_at, str)
        and is_utc_timestamp(occurred_at)
        and parse_timestamp(occurred_at) > now + tolerance
    ):
        reasons.add(future_reason(tolerance))

    event_type = payload.get("event_type")
    contract = CONTRACTS_BY_TYPE.get(event_type) if isinstance(event_type, str) else None
    if isinstance(event_type, str) and contract is None:
        reasons.add(f"event_type: unknown event type '{event_type}'")
    if contract is None:
        return sorted(reasons)
    version = payload.get("schema_version")
    if type(version) is int and version not in contract.supported_versions:
        reasons.add(f"schema_version: unsupported version {version}")
        return sorted(reasons)

    field_reasons: set[str] = set()
    for spec in contract.fields:
        field_reasons.update(_check(spec, payload, spec.name))
    reasons |= field_reasons
    if not field_reasons and not reasons:
        reasons.update(rule.reason for rule in contract.rules if rule.python(payload))
    return sorted(reasons)


def _check(spec: FieldSpec, container: Mapping[str, Any], path: str) -> Iterable[str]:
    value = container.get(spec.name)
    if value is None:
        return [f"{path}: missing"] if spec.required else []
    return _check_value(spec, value, path)


def _check_value(spec: FieldSpec, value: Any, path: str) -> list[str]:
    kind = spec.kind
    if not _has_type(kind, value):
        return [f"{path}: {EXPECTED[kind]}"]
    out: list[str] = []
    if kind in (Kind.STRING, Kind.ENUM):
        out += _length(spec, len(value), path)
        if kind is Kind.ENUM and value not in spec.choices:
            out.append(f"{path}: expected one of {', '.join(spec.choices)}")
    elif kind in (Kind.INT, Kind.FLOAT):
        if spec.minimum is not None and value < spec.minimum:
            out.append(f"{path}: must be >= {_num(spec.minimum)}")
        if spec.maximum is not None and value > spec.maximum:
            out.append(f"{path}: must be <= {_num(spec.maximum)}")
    elif kind in (Kind.STRING_LIST, Kind.INT_LIST):
        out += _length(spec, len(value), path)
        item_kind = Kind.STRING if kind is Kind.STRING_LIST else Kind.INT
        if any(not _has_type(item_kind, v) for v in value):
            out.append(f"{path}[]: {EXPECTED[item_kind]}")
    elif kind is Kind.OBJECT:
        for item_spec in spec.items:
            out += _check(item_spec, value, f"{path}.{item_spec.name}")
    elif kind is Kind.OBJECT_LIST:
        out += _length(spec, len(value), path)
        for item in value:
            if not isinstance(item, dict):
                out.append(f"{path}[]: {EXPECTED[Kind.OBJECT]}")
                continue
            for item_spec in spec.items:
                out += _check(item_spec, item, f"{path}[].{item_spec.name}")
    return out


def _has_type(kind: Kind, value: Any) -> bool:
    if kind in (Kind.STRING, Kind.ENUM):
        return isinstance(value, str)
    if kind is Kind.INT:
        return type(value) is int
    if kind is Kind.FLOAT:
        return type(value) in (int, float)
    if kind is Kind.BOOL:
        return type(value) is bool
    if kind is Kind.UUID:
        return isinstance(value, str) and bool(_UUID_RE.match(value))
    if kind is Kind.TIMESTAMP:
        return isinstance(value, str) and is_utc_timestamp(value)
    if kind in (Kind.STRING_LIST, Kind.INT_LIST, Kind.OBJECT_LIST):
        return isinstance(value, list)
    if kind is Kind.OBJECT:
        return isinstance(value, dict)
    raise AssertionError(kind)


def _length(spec: FieldSpec, length: int, path: str) -> list[str]:
    out = []
    if spec.min_length is not None and length < spec.min_length:
        out.append(f"{path}: length must be >= {spec.min_length}")
    if spec.max_length is not None and length > spec.max_length:
        out.append(f"{path}: length must be <= {spec.max_length}")
    return out


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def parse_and_validate(
    line: bytes, *, now: datetime, tolerance: timedelta = timedelta(hours=1)
) -> tuple[dict[str, Any] | None, list[str]]:
    """Parse once and validate: the payload (None if unreadable) and its reasons."""
    try:
        payload = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None, [MALFORMED_JSON]
    if not isinstance(payload, dict):
        return None, [NOT_AN_OBJECT]
    return payload, validate_event(payload, now=now, tolerance=tolerance)
