"""Validated payloads to Arrow columns shaped like the raw tables (the contracts decide the types)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from contracts.spec import FieldSpec, Kind

_SCALARS: dict[Kind, pa.DataType] = {
    Kind.STRING: pa.string(),
    Kind.ENUM: pa.string(),
    Kind.INT: pa.int64(),
    Kind.FLOAT: pa.float64(),
    Kind.BOOL: pa.bool_(),
    Kind.UUID: pa.string(),
    Kind.TIMESTAMP: pa.string(),  # cast to timestamp[ms, UTC] below, vectorized
}

TIMESTAMP_TYPE = pa.timestamp("ms", tz="UTC")


def arrow_type(spec: FieldSpec) -> pa.DataType:
    kind = spec.kind
    if kind is Kind.STRING_LIST:
        return pa.list_(pa.string())
    if kind is Kind.INT_LIST:
        return pa.list_(pa.int64())
    if kind in (Kind.OBJECT, Kind.OBJECT_LIST):
        struct = pa.struct([(item.name, arrow_type(item)) for item in spec.items])
        return struct if kind is Kind.OBJECT else pa.list_(struct)
    return _SCALARS[kind]


def column(spec: FieldSpec, payloads: Sequence[dict[str, Any]]) -> pa.Array:
    """One raw-table column for a batch of valid payloads of one family."""
    name = spec.name
    if spec.kind in (Kind.STRING_LIST, Kind.INT_LIST, Kind.OBJECT_LIST):
        values = [p.get(name) or [] for p in payloads]  # absent lists are empty arrays
    else:
        values = [p.get(name) for p in payloads]
    array = pa.array(values, type=arrow_type(spec))
    if spec.kind is Kind.TIMESTAMP:
        return array.cast(TIMESTAMP_TYPE)
    return array
