"""Feast's online rows from an Arrow batch, built column by column instead of value by value.

Feast's materialization turns every value of a batch into a `ValueProto` object and every row's
keys into an `EntityKeyProto` (`feast.utils._convert_arrow_to_proto`); its SQLite store then
serializes each one again and upserts one (entity, feature) row per statement. At a few
microseconds per value that was most of the features stage. `OnlineRows.of` builds the same
bytes from whole columns: the serialized entity keys (`serialize_entity_key`, version 3), each
feature's serialized `ValueProto` with the text Feast's SQLite store keeps beside it, the event
times as SQLite's registered datetime adapter binds them, and each value as the number or string
`featurestore.vectors` packs. Each distinct value is encoded once.

Only what the platform's views hold is encoded here (Int64 keys; Int64, Float64, Bool, String
and UnixTimestamp features, as numpy gives them). A feature column of any other shape goes
through Feast's own conversion, value by value, so the bytes are Feast's either way; `of`
returns None when the keys or times are of another shape, and the caller then uses Feast's path
for the whole batch. tests/test_arrow_online_rows.py compares every byte with Feast's writer.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from feast import FeatureView
from feast.infra.online_stores.helpers import extract_text_and_num
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.type_map import python_values_to_proto_values
from feast.value_type import ValueType

from featurestore.vectors import _number, _string

# ValueProto field tags (field number << 3 | wire type): the oneof members the platform uses
STRING_TAG = b"\x12"  # string_val = 2, length-delimited
INT64_TAG = b"\x20"  # int64_val = 4, varint
DOUBLE_TAG = 0x29  # double_val = 5, 64-bit
BOOL_TAG = b"\x38"  # bool_val = 7, varint
UNIX_TIMESTAMP_TAG = b"\x40"  # unix_timestamp_val = 8, varint
NULL = b""  # an empty ValueProto: what Feast writes for a missing value
MAX_EXACT_INT = 2.0**63
UNIX_EPOCH = datetime(1970, 1, 1)  # naive, as Feast hands times to SQLite


@dataclass
class FeatureColumn:
    """One feature of a batch: Feast's bytes and text per row, and the vector's value."""

    values: list[bytes]  # serialized ValueProto
    texts: list[str | None]  # Feast's `value_text` column
    numbers: np.ndarray | None  # float64 (NaN = missing), for numeric features
    strings: list[str | None] | None  # for String features


@dataclass
class OnlineRows:
    """Everything Feast's SQLite store and the vector tables write for one batch."""

    entity_keys: list[bytes]
    join_values: dict[str, np.ndarray]  # int64 per join key
    features: dict[str, FeatureColumn]  # in the view's schema order
    event_ts: list[Any]  # what sqlite3's registered datetime adapter makes of each time
    event_epoch: np.ndarray  # float64 Unix seconds, as `featurestore.vectors` packs it

    def __len__(self) -> int:
        return len(self.entity_keys)

    @classmethod
    def of(
        cls,
        batch: pa.RecordBatch | pa.Table,
        view: FeatureView,
        join_keys: dict[str, ValueType],
        version: int,
    ) -> OnlineRows | None:
        """The batch's rows, or None when its keys or times need Feast's own path."""
        if isinstance(batch, pa.Table):  # as Feast does: its first batch only
            batch = batch.to_batches()[0]
        source = view.batch_source
        if version < 3 or source is None or source.created_timestamp_column:
            return None
        keys = _entity_keys(batch, join_keys)
        times = _event_times(batch.column(source.timestamp_field))
        if keys is None or times is None:
            return None
        entity_keys, join_values = keys
        event_ts, event_epoch = times
        features = {
            field.name: _feature(
                batch.column(field.name).to_numpy(zero_copy_only=False),
                field.dtype.to_value_type(),
            )
            for field in view.features
        }
        return cls(entity_keys, join_values, features, event_ts, event_epoch)


# --- entity keys -------------------------------------------------------------------------------


def _entity_keys(
    batch: pa.RecordBatch, join_keys: dict[str, ValueType]
) -> tuple[list[bytes], dict[str, np.ndarray]] | None:
    """`serialize_entity_key` (version 3) of each row: the key count, each (sorted) key's type,
    length and name, then each value's type, length and little-endian int64."""
    if not join_keys or any(kind != ValueType.INT64 for kind in join_keys.values()):
        return None
    columns: dict[str, np.ndarray] = {}
    for name in join_keys:
        column = batch.column(name).to_numpy(zero_copy_only=False)
        if column.dtype.kind not in "iu" or column.dtype == np.uint64:
            return None
        columns[name] = column.astype(np.int64)
    names = sorted(join_keys)
    prefix = struct.pack("<I", len(names))
    for name in names:
        encoded = name.encode("utf8")
        prefix += struct.pack("<II", ValueType.STRING.value, len(encoded)) + encoded
    value_header = struct.pack("<II", ValueType.INT64.value, 8)
    fields: list[tuple[str, Any]] = [("prefix", f"V{len(prefix)}")]
    for i in range(len(names)):
        fields += [(f"header{i}", "V8"), (f"value{i}", "<i8")]
    record = np.dtype(fields)
    packed = np.empty(batch.num_rows, dtype=record)
    packed["prefix"] = np.frombuffer(prefix, dtype=f"V{len(prefix)}")[0]
    for i, name in enumerate(names):
        packed[f"header{i}"] = np.frombuffer(value_header, dtype="V8")[0]
        packed[f"value{i}"] = columns[name]
    return _split(packed.tobytes(), record.itemsize, batch.num_rows), columns


def _split(buffer: bytes, size: int, rows: int) -> list[bytes]:
    return [buffer[start : start + size] for start in range(0, size * rows, size)]


# --- event times -------------------------------------------------------------------------------


def _event_times(column: pa.Array) -> tuple[list[Any], np.ndarray] | None:
    """Feast reads each time as `pd.to_datetime(...).to_pydatetime()` (naive UTC, whole
    microseconds) and binds it to SQLite through the adapter registered for datetimes (Feast's
    SQLite module registers `int(val.timestamp())`); the vector packs `timestamp()` as a float,
    i.e. microseconds / 10**6. The adapter runs once per distinct time."""
    index = pd.to_datetime(column.to_numpy(zero_copy_only=False))
    if not isinstance(index, pd.DatetimeIndex) or index.tz is not None or index.hasnans:
        return None
    micros = index.to_numpy().astype("datetime64[us]").astype(np.int64)
    if len(micros) and micros.min() <= 0:
        return None
    distinct, inverse = np.unique(micros, return_inverse=True)
    bound = [
        sqlite3.adapt(UNIX_EPOCH + timedelta(microseconds=m), sqlite3.PrepareProtocol)
        for m in distinct.tolist()
    ]
    return [bound[i] for i in inverse.tolist()], micros.astype(np.float64) / 1e6


# --- feature values ----------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64s as their two's complement: ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _by_distinct(
    present: np.ndarray, values: np.ndarray, encode: Callable[[Any], tuple[bytes, str | None]]
) -> tuple[list[bytes], list[str | None]]:
    """Encode each distinct present value once; missing rows get Feast's empty value."""
    rows = len(present)
    distinct, inverse = np.unique(values, return_inverse=True)
    encoded = [encode(v) for v in distinct.tolist()]
    blobs = [encoded[i][0] for i in inverse.tolist()]
    texts = [encoded[i][1] for i in inverse.tolist()]
    if len(blobs) == rows:
        return blobs, texts
    all_blobs: list[bytes] = [NULL] * rows
    all_texts: list[str | None] = [None] * rows
    for row, blob, text in zip(np.flatnonzero(present).tolist(), blobs, texts, strict=True):
        all_blobs[row] = blob
        all_texts[row] = text
    return all_blobs, all_texts


def _ints(column: np.ndarray) -> FeatureColumn | None:
    """Int64: `int(x)` of each non-null value (a column with nulls comes as float64)."""
    if column.dtype.kind in "iu" and column.dtype != np.uint64:
        present = np.ones(len(column), dtype=bool)
        ints = column.astype(np.int64)
    elif column.dtype.kind == "f":
        present = ~np.isnan(column)
        kept = column[present]
        if not np.isfinite(kept).all() or (np.abs(kept) >= MAX_EXACT_INT).any():
            return None
        ints = np.trunc(kept).astype(np.int64)
    else:
        return None
    blobs, texts = _by_distinct(present, ints, lambda v: (INT64_TAG + _varint(v), str(v)))
    numbers = np.full(len(column), np.nan)
    numbers[present] = ints.astype(np.float64)
    return FeatureColumn(blobs, texts, numbers, None)


def _doubles(column: np.ndarray) -> FeatureColumn | None:
    """Float64: NaN is null (`pd.isnull`), anything else its eight bytes."""
    if column.dtype == np.int64:
        column = column.astype(np.float64)
    elif column.dtype != np.float64:
        return None
    present = ~np.isnan(column)
    kept = column[present]
    packed = np.empty(len(kept), dtype=[("tag", "u1"), ("value", "<f8")])
    packed["tag"] = DOUBLE_TAG
    packed["value"] = kept
    encoded = _split(packed.tobytes(), 9, len(kept))
    texts = [repr(v) for v in kept.tolist()]
    if len(kept) == len(column):
        blobs: list[bytes] = encoded
        all_texts: list[str | None] = list(texts)
    else:
        blobs = [NULL] * len(column)
        all_texts = [None] * len(column)
        for row, blob, text in zip(np.flatnonzero(present).tolist(), encoded, texts, strict=True):
            blobs[row] = blob
            all_texts[row] = text
    return FeatureColumn(blobs, all_texts, np.where(present, column, np.nan), None)


BOOL_VALUES: dict[object, tuple[bytes, str | None, float]] = {
    True: (BOOL_TAG + b"\x01", "True", 1.0),
    False: (BOOL_TAG + b"\x00", "False", 0.0),
    None: (NULL, None, np.nan),
}


def _bools(column: np.ndarray) -> FeatureColumn | None:
    """Bool: numpy bools, or Python objects (True, False, None) when the column has nulls."""
    if column.dtype != np.bool_ and column.dtype != object:
        return None
    flags = column.tolist()
    if column.dtype == object and any(type(f) is not bool and f is not None for f in flags):
        return None
    encoded = [BOOL_VALUES[flag] for flag in flags]
    return FeatureColumn(
        [e[0] for e in encoded],
        [e[1] for e in encoded],
        np.array([e[2] for e in encoded], dtype=np.float64),
        None,
    )


def _strings(column: np.ndarray) -> FeatureColumn | None:
    if column.dtype != object:
        return None
    memo: dict[str, bytes] = {}
    blobs: list[bytes] = []
    strings: list[str | None] = []
    for value in column.tolist():
        if value is None:
            blobs.append(NULL)
            strings.append(None)
        elif type(value) is str:
            blob = memo.get(value)
            if blob is None:
                encoded = value.encode("utf8")
                blob = memo[value] = STRING_TAG + _varint(len(encoded)) + encoded
            blobs.append(blob)
            strings.append(value)
        else:  # NaN, pd.NA, bytes...: Feast's rules
            return None
    return FeatureColumn(blobs, list(strings), None, strings)


def _timestamps(column: np.ndarray) -> FeatureColumn | None:
    """UnixTimestamp: whole seconds (`astype("datetime64[s]")`); NaT is Feast's null time."""
    if column.dtype.kind != "M":
        return None
    seconds = column.astype("datetime64[s]").astype(np.int64)
    present = np.ones(len(column), dtype=bool)
    blobs, _ = _by_distinct(present, seconds, lambda v: (UNIX_TIMESTAMP_TAG + _varint(v), None))
    numbers = np.where(np.isnat(column), np.nan, seconds.astype(np.float64))
    return FeatureColumn(blobs, [None] * len(column), numbers, None)


ENCODERS: dict[ValueType, Callable[[np.ndarray], FeatureColumn | None]] = {
    ValueType.INT64: _ints,
    ValueType.DOUBLE: _doubles,
    ValueType.BOOL: _bools,
    ValueType.STRING: _strings,
    ValueType.UNIX_TIMESTAMP: _timestamps,
}
NUMERIC = (ValueType.INT64, ValueType.DOUBLE, ValueType.BOOL, ValueType.UNIX_TIMESTAMP)


def _feature(column: np.ndarray, kind: ValueType) -> FeatureColumn:
    encoder = ENCODERS.get(kind)
    encoded = encoder(column) if encoder else None
    return encoded if encoded is not None else _with_feast(column, kind)


def _with_feast(column: np.ndarray, kind: ValueType) -> FeatureColumn:
    """Feast's own conversion, value by value: for the shapes not encoded above."""
    # Feast hands it the numpy column too (`_columns_to_proto_values`)
    protos: list[ValueProto] = python_values_to_proto_values(column, kind)  # type: ignore[arg-type]
    blobs = [proto.SerializeToString() for proto in protos]
    texts = [extract_text_and_num(proto, False)[0] for proto in protos]
    numbers = None
    strings = None
    if kind in NUMERIC:
        numbers = np.array([_number(proto) for proto in protos], dtype=np.float64)
    elif kind == ValueType.STRING:
        strings = [_string(proto) for proto in protos]
    return FeatureColumn(blobs, texts, numbers, strings)
