"""Feast's SQLite and Redis online stores, writing per-entity vectors beside Feast's own rows.

Every write Feast makes (materialization from code or the CLI, pushes) goes through
`online_write_batch`; these subclasses let Feast write its rows first, then write one vector blob
per feature view and entity (`featurestore.vectors`) from the same values. Feast stays the
source of truth and its own reads (`get_online_features`, `feast serve`) are untouched;
`featurestore.online` reads the blobs in bulk.

SQLite also keeps the vectors of views keyed by a user and something else (viewer x author) in a
second table clustered by that user, so a viewer's first feed reads all of its pairs as one
range instead of seeking ~250 keys x 4 views (`featurestore.online`). Same blobs, same
transaction; a store made before that table existed is filled in by the next `feast apply`.

`feature_store.yaml` names them as `type: featurestore.online_stores.PlatformSqliteOnlineStore`
(or `...PlatformRedisOnlineStore`) with the stock options.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import repeat
from typing import Any, Literal

import pyarrow as pa
from feast import Entity, FeatureView, RepoConfig, ValueType
from feast.infra.key_encoding_utils import deserialize_entity_key, serialize_entity_key
from feast.infra.online_stores.helpers import _redis_key
from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig
from feast.infra.online_stores.sqlite import (
    SqliteOnlineStore,
    SqliteOnlineStoreConfig,
    _quote_id,
    _table_id,
)
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from featurestore.arrow_rows import OnlineRows
from featurestore.vectors import VectorLayout, blob_time

WriteRows = list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]]

SQLITE_TYPE = "featurestore.online_stores.PlatformSqliteOnlineStore"
REDIS_TYPE = "featurestore.online_stores.PlatformRedisOnlineStore"
REDIS_PREFIX = b"pp_vec:"


USER_KEY = "user_id"


def sqlite_vector_table(project: str) -> str:
    return f"{project}__vectors"


def sqlite_user_vector_table(project: str) -> str:
    """Vectors of `by_user` views, keyed (view, user, entity key): a user's entities together."""
    return f"{project}__vectors_by_user"


def by_user(join_keys: Sequence[str]) -> bool:
    """Entities keyed by a user and something else (the viewer x author views)."""
    return len(join_keys) > 1 and USER_KEY in join_keys


def redis_vector_key(view_name: str, redis_key: bytes) -> bytes:
    """`pp_vec:<view>:` + Feast's Redis key (serialized entity key + project)."""
    return REDIS_PREFIX + view_name.encode() + b":" + redis_key


# SQLite's page cache while materializing (KiB; its default is 2 MiB): the upserts of millions of
# rows into a file of ~1.7 GB at 3,000 users x 7 days re-read index pages from disk otherwise.
# 900,000 upserts: 110.0 s wall / 14.3 s CPU with the default, 42.5 s / 10.0 s with 256 MiB
# (docs/benchmarks.md, issue 17, session 12). A setting of the writing connection only; the
# file's contents are the same.
WRITE_PAGE_CACHE_KIB = 256 * 1024


class PlatformSqliteOnlineStoreConfig(SqliteOnlineStoreConfig):
    type: Literal["featurestore.online_stores.PlatformSqliteOnlineStore"] = (
        "featurestore.online_stores.PlatformSqliteOnlineStore"  # type: ignore[assignment]
    )


class PlatformSqliteOnlineStore(SqliteOnlineStore):
    """SQLite: vectors in `<project>__vectors(view, entity_key, vector)`, one row per view and
    entity, written in the transaction after Feast's (overwriting, as Feast does)."""

    def update(
        self,
        config: RepoConfig,
        tables_to_delete: Sequence[FeatureView],
        tables_to_keep: Sequence[FeatureView],
        entities_to_delete: Sequence[Entity],
        entities_to_keep: Sequence[Entity],
        partial: bool,
    ) -> None:
        super().update(
            config, tables_to_delete, tables_to_keep, entities_to_delete, entities_to_keep, partial
        )
        conn = self._get_conn(config)
        table = sqlite_vector_table(config.project)
        users = sqlite_user_vector_table(config.project)
        with conn:
            conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{table}" (view TEXT NOT NULL, entity_key BLOB NOT '
                "NULL, vector BLOB NOT NULL, PRIMARY KEY (view, entity_key)) WITHOUT ROWID"
            )
            new = not conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (users,)
            ).fetchone()
            conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{users}" (view TEXT NOT NULL, user_id INTEGER NOT '
                "NULL, entity_key BLOB NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (view, "
                "user_id, entity_key)) WITHOUT ROWID"
            )
            for view in tables_to_delete:
                conn.execute(f'DELETE FROM "{table}" WHERE view = ?', (view.name,))
                conn.execute(f'DELETE FROM "{users}" WHERE view = ?', (view.name,))
            if new:  # vectors written before this table existed
                kept = [v.name for v in tables_to_keep if by_user(v.join_keys)]
                fill_user_vectors(
                    conn, config.project, kept, config.entity_key_serialization_version
                )

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: WriteRows,
        progress: Callable[[int], Any] | None,
    ) -> None:
        super().online_write_batch(config, table, data, progress)
        layout = VectorLayout.of(table)
        version = config.entity_key_serialization_version
        rows = [
            (
                table.name,
                serialize_entity_key(key, entity_key_serialization_version=version),
                layout.encode(values, event_time),
            )
            for key, values, event_time, _ in data
        ]
        conn = self._get_conn(config)
        with conn:
            conn.executemany(
                f'INSERT OR REPLACE INTO "{sqlite_vector_table(config.project)}" '
                "(view, entity_key, vector) VALUES (?, ?, ?)",
                rows,
            )
            if by_user(table.join_keys):
                conn.executemany(
                    f'INSERT OR REPLACE INTO "{sqlite_user_vector_table(config.project)}" '
                    "(view, user_id, entity_key, vector) VALUES (?, ?, ?, ?)",
                    [
                        (name, _user_id(key), entity_key, blob)
                        for (name, entity_key, blob), (key, *_) in zip(rows, data, strict=True)
                    ],
                )

    def online_write_arrow(
        self,
        config: RepoConfig,
        table: FeatureView,
        batch: pa.RecordBatch | pa.Table,
        join_keys: dict[str, ValueType],
    ) -> bool:
        """Write an Arrow batch as `online_write_batch` would write Feast's rows for it (same
        rows, bytes and insertion order), built column-wise and upserted with `executemany`
        in one transaction with the vectors. False, writing nothing, when the batch or the
        store's options need Feast's path (`featurestore.arrow_engine` then takes it)."""
        online = config.online_store
        if online.vector_enabled or getattr(online, "enable_openai_compatible_store", False):
            return False
        rows = OnlineRows.of(batch, table, join_keys, config.entity_key_serialization_version)
        if rows is None:
            return False
        names = list(rows.features)
        columns = [rows.features[name] for name in names]
        feast_rows = (
            (key, name, column.values[i], column.texts[i], event_ts, None)
            for i, (key, event_ts) in enumerate(zip(rows.entity_keys, rows.event_ts, strict=True))
            for name, column in zip(names, columns, strict=True)
        )
        layout = VectorLayout.of(table)
        blobs = layout.encode_many(
            rows.event_epoch,
            {n: c.numbers for n, c in rows.features.items() if c.numbers is not None},
            {n: c.strings for n, c in rows.features.items() if c.strings is not None},
        )
        feast_table = _quote_id(
            _table_id(config.project, table, config.registry.enable_online_feature_view_versioning)
        )
        conn = self._get_conn(config)
        conn.execute(f"PRAGMA cache_size = -{WRITE_PAGE_CACHE_KIB}")
        with conn:
            conn.executemany(
                f"INSERT INTO {feast_table} (entity_key, feature_name, value, value_text, "
                "event_ts, created_ts) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(entity_key, "
                "feature_name) DO UPDATE SET value = excluded.value, value_text = "
                "excluded.value_text, event_ts = excluded.event_ts, created_ts = excluded.created_ts;",
                feast_rows,
            )
            conn.executemany(
                f'INSERT OR REPLACE INTO "{sqlite_vector_table(config.project)}" '
                "(view, entity_key, vector) VALUES (?, ?, ?)",
                zip(repeat(table.name), rows.entity_keys, blobs),
            )
            if by_user(table.join_keys):
                conn.executemany(
                    f'INSERT OR REPLACE INTO "{sqlite_user_vector_table(config.project)}" '
                    "(view, user_id, entity_key, vector) VALUES (?, ?, ?, ?)",
                    zip(
                        repeat(table.name),
                        rows.join_values[USER_KEY].tolist(),
                        rows.entity_keys,
                        blobs,
                    ),
                )
        return True


def _user_id(key: EntityKeyProto) -> int:
    return int(key.entity_values[list(key.join_keys).index(USER_KEY)].int64_val)


def fill_user_vectors(conn: Any, project: str, views: Sequence[str], version: int) -> int:
    """Copy the vectors of `views` (keyed by a user and more) into the by-user table: what
    `update` does for a store written before that table existed. Returns the rows copied."""
    copied = 0
    for view in views:
        rows = conn.execute(
            f'SELECT entity_key, vector FROM "{sqlite_vector_table(project)}" WHERE view = ?',
            (view,),
        ).fetchall()
        conn.executemany(
            f'INSERT OR REPLACE INTO "{sqlite_user_vector_table(project)}" '
            "(view, user_id, entity_key, vector) VALUES (?, ?, ?, ?)",
            [
                (view, _user_id(deserialize_entity_key(key, version)), key, vector)
                for key, vector in rows
            ],
        )
        copied += len(rows)
    return copied


class PlatformRedisOnlineStoreConfig(RedisOnlineStoreConfig):
    type: Literal["featurestore.online_stores.PlatformRedisOnlineStore"] = (
        "featurestore.online_stores.PlatformRedisOnlineStore"  # type: ignore[assignment]
    )


class PlatformRedisOnlineStore(RedisOnlineStore):
    """Redis: a string key per view and entity (`redis_vector_key`), so a read is one MGET. As
    Feast does for its hashes, a row older than (or as old as) the stored one is skipped, and
    `key_ttl_seconds` applies."""

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: WriteRows,
        progress: Callable[[int], Any] | None,
    ) -> None:
        super().online_write_batch(config, table, data, progress)
        layout = VectorLayout.of(table)
        online = config.online_store
        client = self._get_client(online)
        latest: dict[bytes, tuple[float, bytes]] = {}
        for key, values, event_time, _ in data:
            redis_key = _redis_key(
                config.project,
                key,
                entity_key_serialization_version=config.entity_key_serialization_version,
            )
            blob = layout.encode(values, event_time)
            vector_key = redis_vector_key(table.name, redis_key)
            moment = blob_time(blob)
            if vector_key not in latest or moment > latest[vector_key][0]:
                latest[vector_key] = (moment, blob)
        if not latest:
            return
        keys = list(latest)
        stored = client.mget(keys)
        with client.pipeline(transaction=False) as pipe:
            for vector_key, previous in zip(keys, stored, strict=True):
                moment, blob = latest[vector_key]
                if previous is not None and moment <= blob_time(previous):
                    continue
                pipe.set(vector_key, blob, ex=online.key_ttl_seconds or None)
            pipe.execute()

    def update(
        self,
        config: RepoConfig,
        tables_to_delete: Sequence[FeatureView],
        tables_to_keep: Sequence[FeatureView],
        entities_to_delete: Sequence[Entity],
        entities_to_keep: Sequence[Entity],
        partial: bool,
    ) -> None:
        super().update(
            config, tables_to_delete, tables_to_keep, entities_to_delete, entities_to_keep, partial
        )
        for view in tables_to_delete:
            self._delete_vectors(config, view.name)

    def teardown(
        self,
        config: RepoConfig,
        tables: Sequence[FeatureView],
        entities: Sequence[Entity],
    ) -> None:
        for view in tables:
            self._delete_vectors(config, view.name)
        super().teardown(config, tables, entities)

    def _delete_vectors(self, config: RepoConfig, view_name: str) -> None:
        client = self._get_client(config.online_store)
        pattern = REDIS_PREFIX + view_name.encode() + b":*" + config.project.encode()
        with client.pipeline(transaction=False) as pipe:
            for key in client.scan_iter(match=pattern, count=1000):
                pipe.delete(key)
            pipe.execute()
