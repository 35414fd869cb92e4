"""Per-entity feature vectors: one blob per feature view and entity, written beside Feast's rows.

Feast keeps one row (SQLite) or one hash field (Redis) per entity and feature, each a serialized
`ValueProto`; reading 1,000 entities x 20 features means 20,000 protobuf values. The online
stores in `featurestore.online_stores` also write, in the same `online_write_batch` call and from
the same values, one blob per feature view and entity:

    fingerprint (8 bytes) | event time (float64, Unix s) | numbers (float64 each) | strings (JSON)

Numbers are every Int64, Float64, Bool and UnixTimestamp feature in schema order (NaN = null;
integers are exact up to 2^53); strings are a JSON list, present only when the view has String
features. The fingerprint hashes the view's feature names and types, so a blob written under
another schema is recognised and read as missing rather than misread.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import orjson
from feast import FeatureView
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.type_map import NULL_TIMESTAMP_INT_VALUE
from feast.types import Bool, Float32, Float64, Int32, Int64, String, UnixTimestamp

NUMERIC_TYPES = (Int64, Int32, Float64, Float32, Bool, UnixTimestamp)
HEADER = struct.Struct("<Qd")  # fingerprint, event time
MISSING_TIME = float("nan")


@dataclass(frozen=True)
class VectorLayout:
    """Where each feature of a view sits in its blob."""

    name: str
    numeric: tuple[tuple[str, object], ...]  # (feature, feast dtype) in blob order
    strings: tuple[str, ...]
    fingerprint: int

    @classmethod
    def of(cls, view: FeatureView) -> VectorLayout:
        numeric: list[tuple[str, object]] = []
        strings: list[str] = []
        for field in view.features:
            if field.dtype in NUMERIC_TYPES:
                numeric.append((field.name, field.dtype))
            elif field.dtype == String:
                strings.append(field.name)
            else:
                raise TypeError(
                    f"{view.name}.{field.name}: {field.dtype} has no vector encoding "
                    "(numbers, booleans, timestamps and strings do)"
                )
        signature = "|".join(f"{field.name}:{field.dtype}" for field in view.features)
        digest = hashlib.blake2b(signature.encode(), digest_size=8).digest()
        return cls(
            name=view.name,
            numeric=tuple(numeric),
            strings=tuple(strings),
            fingerprint=int.from_bytes(digest, "little"),
        )

    @property
    def numbers_size(self) -> int:
        return HEADER.size + 8 * len(self.numeric)

    def encode(self, values: dict[str, ValueProto], event_time: datetime) -> bytes:
        numbers = [_number(values.get(name)) for name, _ in self.numeric]
        blob = HEADER.pack(self.fingerprint, _epoch(event_time))
        blob += struct.pack(f"<{len(numbers)}d", *numbers)
        if self.strings:
            blob += orjson.dumps([_string(values.get(name)) for name in self.strings])
        return blob

    def encode_many(
        self,
        event_epoch: np.ndarray,
        numbers: dict[str, np.ndarray],
        strings: dict[str, list[str | None]],
    ) -> list[bytes]:
        """`encode` of every row at once, from columns: event times (Unix s), each numeric
        feature (NaN = missing) and each string feature (None = missing)."""
        rows = len(event_epoch)
        record = np.dtype(
            [("fingerprint", "<u8"), ("time", "<f8"), ("numbers", "<f8", (len(self.numeric),))]
        )
        packed = np.empty(rows, dtype=record)
        packed["fingerprint"] = self.fingerprint
        packed["time"] = event_epoch
        for i, (name, _) in enumerate(self.numeric):
            packed["numbers"][:, i] = numbers[name]
        buffer = packed.tobytes()
        size = record.itemsize
        blobs = [buffer[start : start + size] for start in range(0, size * rows, size)]
        if not self.strings:
            return blobs
        texts = zip(*(strings[name] for name in self.strings), strict=True)
        return [blob + orjson.dumps(list(row)) for blob, row in zip(blobs, texts, strict=True)]

    def decode_many(
        self, blobs: Sequence[bytes | None]
    ) -> tuple[np.ndarray, np.ndarray, list[list[str | None]] | None]:
        """Event times (NaN where missing), the numbers matrix (rows x numeric features, NaN
        where missing) and, if the view has strings, one list per row (None where missing)."""
        rows = len(blobs)
        width = len(self.numeric) + 1
        size = self.numbers_size
        if not self.strings:  # fixed size: one buffer, one numpy view (a stand-in for missing)
            blank = b"\0" * size
            packed = np.frombuffer(
                b"".join(blank if b is None or len(b) != size else b for b in blobs),
                dtype=np.dtype([("fingerprint", "<u8"), ("numbers", "<f8", (width,))]),
            )
            matrix = np.where(
                (packed["fingerprint"] == np.uint64(self.fingerprint))[:, None],
                packed["numbers"],
                np.nan,
            )
            return matrix[:, 0], matrix[:, 1:], None
        valid = [
            b is not None and len(b) >= size and HEADER.unpack_from(b)[0] == self.fingerprint
            for b in blobs
        ]
        matrix = np.full((rows, width), np.nan)
        present = [b[8:size] for b, ok in zip(blobs, valid, strict=True) if ok]  # type: ignore[index]
        if present:
            decoded = np.frombuffer(b"".join(present), dtype="<f8").reshape(len(present), width)
            matrix[np.flatnonzero(valid)] = decoded
        strings: list[list[str | None]] | None = None
        if self.strings:
            empty: list[str | None] = [None] * len(self.strings)
            # one JSON document for every row's list: one parse instead of one per row
            parts = [b[size:] for b, ok in zip(blobs, valid, strict=True) if ok]  # type: ignore[index]
            lists = iter(orjson.loads(b"[" + b",".join(parts) + b"]"))
            strings = [next(lists) if ok else empty for ok in valid]
        return matrix[:, 0], matrix[:, 1:], strings


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _number(value: ValueProto | None) -> float:
    if value is None:
        return math.nan
    kind = value.WhichOneof("val")
    if kind is None or kind == "null_val":
        return math.nan
    if kind == "unix_timestamp_val":
        seconds = value.unix_timestamp_val
        return math.nan if seconds == NULL_TIMESTAMP_INT_VALUE else float(seconds)
    if kind in ("int64_val", "int32_val", "double_val", "float_val", "bool_val"):
        return float(getattr(value, kind))
    raise TypeError(f"cannot store a {kind} as a number")


def _string(value: ValueProto | None) -> str | None:
    if value is None or value.WhichOneof("val") != "string_val":
        return None
    return value.string_val


def blob_time(blob: bytes | None) -> float:
    """The event time a blob was written for (NaN for none)."""
    if blob is None or len(blob) < HEADER.size:
        return MISSING_TIME
    return HEADER.unpack_from(blob)[1]
