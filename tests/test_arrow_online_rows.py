"""The column-wise online writer against Feast's own, byte for byte, on a real SQLite store.

Each batch is written twice into fresh stores of the platform's SQLite online store: once as
Feast does it (`_convert_arrow_to_proto` then `online_write_batch`), once through
`online_write_arrow` (`featurestore.arrow_rows`). Every row of every table must be equal,
rowid and SQLite storage class included, and Feast's `online_read` must return the same values.
The batches hold what a mart can: nulls in every type (ints then come as float64), NaN and -0.0,
negative and large ints, empty and non-ASCII strings, times with and without microseconds, NaT.
A column of a shape the writer does not encode (Int64 as uint64) takes Feast's path.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from feast import Entity, FeatureView, Field, FileSource, RepoConfig, ValueType
from feast.types import Bool, Float64, Int64, String, UnixTimestamp
from feast.utils import _convert_arrow_to_proto
from sqlite_dump import dump_tables

from featurestore import arrow_rows
from featurestore.arrow_rows import OnlineRows
from featurestore.online_stores import PlatformSqliteOnlineStore

PROJECT = "arrow_rows"
USER = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64)
AUTHOR = Entity(name="author", join_keys=["author_id"], value_type=ValueType.INT64)
FEATURES = [
    Field(name="count", dtype=Int64),
    Field(name="rate", dtype=Float64),
    Field(name="flag", dtype=Bool),
    Field(name="label", dtype=String),
    Field(name="seen_at", dtype=UnixTimestamp),
    Field(name="score", dtype=Float64),
]


def view(name: str, entities: list[Entity]) -> FeatureView:
    keys = [Field(name=e.join_key, dtype=Int64) for e in entities]
    return FeatureView(
        name=name,
        entities=entities,
        ttl=timedelta(days=30),
        schema=[*keys, *FEATURES],
        source=FileSource(path="unused.parquet", timestamp_field="event_timestamp"),
        online=True,
    )


PAIRS = view("pairs", [USER, AUTHOR])  # by user: also the by-user vector table
USERS = view("users", [USER])


def batch(rows: int, seed: int, *, nulls: bool) -> pa.RecordBatch:
    rng = np.random.default_rng(seed)
    base = datetime(2026, 11, 7, tzinfo=UTC)
    micros = rng.integers(0, 3 * 86_400_000_000, rows)
    micros[::3] -= micros[::3] % 1_000_000  # whole seconds: no fraction in SQLite's text
    times = [base + timedelta(microseconds=int(m)) for m in micros]
    counts = rng.integers(-5, 50, rows).astype(object)
    counts[0], counts[1] = 2**62 + 1, -(2**40)
    rates = rng.normal(0.0, 3.0, rows)
    rates[2], rates[3] = -0.0, 1e-300
    labels = rng.choice(np.array(["", "ünïcode ✓", "plain", "x" * 200], dtype=object), rows)
    seen = [base - timedelta(seconds=int(s)) for s in rng.integers(0, 10**7, rows)]
    flags = (rng.random(rows) < 0.5).astype(object)
    missing = rng.random(rows) < (0.2 if nulls else 0.0)
    columns = {
        "user_id": pa.array(rng.integers(1, rows // 3 + 2, rows), pa.int64()),
        "author_id": pa.array(rng.integers(-3, 1 << 40, rows), pa.int64()),
        "count": pa.array(
            [None if m else int(c) for c, m in zip(counts, missing, strict=True)], pa.int64()
        ),
        "rate": pa.array(np.where(missing, np.nan, rates), pa.float64()),
        "flag": pa.array(
            [None if m else bool(f) for f, m in zip(flags, missing, strict=True)], pa.bool_()
        ),
        "label": pa.array(
            [None if m else s for s, m in zip(labels, missing, strict=True)], pa.string()
        ),
        "seen_at": pa.array(
            [None if m else t for t, m in zip(seen, missing, strict=True)],
            pa.timestamp("us", tz="UTC"),
        ),
        "score": pa.array(
            [None if m else float(r) for r, m in zip(rates, missing, strict=True)], pa.float64()
        ),
        "event_timestamp": pa.array(times, pa.timestamp("us", tz="UTC")),
    }
    return pa.RecordBatch.from_pydict(columns)


def store_at(path: Path, views: list[FeatureView]) -> tuple[PlatformSqliteOnlineStore, RepoConfig]:
    config = RepoConfig(
        project=PROJECT,
        provider="local",
        registry=str(path / "registry.db"),
        online_store={
            "type": "featurestore.online_stores.PlatformSqliteOnlineStore",
            "path": str(path / "online.db"),
        },
        entity_key_serialization_version=3,
    )
    store = PlatformSqliteOnlineStore()
    store.update(config, [], views, [], [USER, AUTHOR], partial=False)
    return store, config


def join_keys(fv: FeatureView) -> dict[str, ValueType]:
    return {e.name: e.dtype.to_value_type() for e in fv.entity_columns}


def write_both(tmp_path: Path, batches: list[tuple[FeatureView, pa.RecordBatch]]) -> None:
    views = list({fv.name: fv for fv, _ in batches}.values())
    feast, feast_config = store_at(tmp_path / "feast", views)
    fast, fast_config = store_at(tmp_path / "fast", views)
    for fv, data in batches:
        rows = _convert_arrow_to_proto(data, fv, join_keys(fv))
        feast.online_write_batch(feast_config, fv, rows, None)
        assert fast.online_write_arrow(fast_config, fv, data, join_keys(fv))
    assert dump_tables(tmp_path / "feast" / "online.db") == dump_tables(
        tmp_path / "fast" / "online.db"
    )
    for fv, data in batches:
        keys = [key for key, *_ in _convert_arrow_to_proto(data, fv, join_keys(fv))]
        assert feast.online_read(feast_config, fv, keys) == fast.online_read(fast_config, fv, keys)


@pytest.mark.parametrize("nulls", [False, True])
def test_arrow_rows_are_feasts_bytes(tmp_path: Path, nulls: bool, monkeypatch) -> None:
    def no_fallback(*args: object) -> None:
        raise AssertionError("a column of the platform's shapes went through Feast's conversion")

    monkeypatch.setattr(arrow_rows, "_with_feast", no_fallback)
    first = batch(600, seed=1, nulls=nulls)
    again = batch(600, seed=2, nulls=nulls)  # overlapping keys: upserts over Feast's rows
    write_both(tmp_path, [(PAIRS, first), (USERS, first), (PAIRS, again), (USERS, again)])


def test_an_unencoded_column_falls_back_to_feasts_conversion(tmp_path: Path) -> None:
    data = batch(100, seed=4, nulls=True)
    unsigned = pa.array(np.arange(100, dtype=np.uint64) * 7, pa.uint64())  # not encoded here
    data = data.set_column(data.schema.get_field_index("count"), "count", unsigned)
    write_both(tmp_path, [(USERS, data)])


def test_keys_of_another_type_leave_the_batch_to_feast(tmp_path: Path) -> None:
    data = batch(20, seed=5, nulls=False)
    with_null_key = data.set_column(0, "user_id", pa.array([None] + [1] * 19, pa.int64()))
    _, config = store_at(tmp_path, [USERS])
    assert OnlineRows.of(with_null_key, USERS, join_keys(USERS), 3) is None
    store = PlatformSqliteOnlineStore()
    assert not store.online_write_arrow(config, USERS, with_null_key, join_keys(USERS))
