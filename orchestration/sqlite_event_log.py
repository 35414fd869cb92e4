"""Dagster's SQLite storage with one SQLAlchemy engine per event-log file (the embedded profile).

Dagster's `SqliteEventLogStorage` builds a new engine for every connection it opens, i.e. for
every event it stores. An engine carries SQLAlchemy's compiled-statement cache and the dialect's
first-connect set-up, so both were thrown away per event: a partitioned run stores thousands of
events (an hourly ingestion backfill plans and materializes 10 assets per hour), and compiling
the same INSERTs again and opening engines was most of the run's own CPU beside the loader.

`CachedEngineSqliteStorage` is Dagster's SQLite storage with the event log swapped for
`CachedEngineEventLogStorage`, which keeps one engine per shard (the run's file and the index)
with a pool of one connection (overflow for a concurrent thread) instead of `NullPool`: every
event is still its own transaction, committed before the next (other processes - the UI, the
daemon - read and write the same files, SQLite's locks between them unchanged), but the
statements are compiled once and the connection is opened once. An idle pooled connection holds
no lock or snapshot. Engines are per process (one inherited through fork is left alone) and at
most `MAX_ENGINES` stay open. The instance uses it through dagster.yaml:

    storage:
      custom:
        module: orchestration.sqlite_event_log
        class: CachedEngineSqliteStorage
        config: {base_dir: <dir>}
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

MAX_ENGINES = 16  # shards with a live engine: a run's own file is hot while it runs, then never


class CachedEngineEventLogStorage(SqliteEventLogStorage):
    """SQLite event log storage reusing one engine per shard instead of one per connection."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, tuple[int, Engine]] = OrderedDict()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> CachedEngineEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        pid = os.getpid()
        kept = self._engines.get(shard)
        if kept is None or kept[0] != pid:  # an engine inherited through fork is not reused
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=4,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            self._engines[shard] = kept = (pid, engine)
        self._engines.move_to_end(shard)
        while len(self._engines) > MAX_ENGINES:
            _, (owner, oldest) = self._engines.popitem(last=False)
            if owner == pid:
                oldest.dispose()
        return kept[1]

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # as Dagster's, under the same lock, with the engine kept instead of built and disposed
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def wipe(self) -> None:
        self._dispose_engines()
        super().wipe()

    def delete_events(self, run_id: str) -> None:
        super().delete_events(run_id)
        kept = self._engines.pop(run_id, None)
        if kept is not None and kept[0] == os.getpid():
            kept[1].dispose()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()

    def _dispose_engines(self) -> None:
        with self._db_lock:
            pid = os.getpid()
            for owner, engine in self._engines.values():
                if owner == pid:
                    engine.dispose()
            self._engines.clear()


class CachedEngineSqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage (same files, same run and schedule storage) whose event log
    keeps its engines (`CachedEngineEventLogStorage`)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self.base_dir = base_dir
        self._run_storage = SqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = CachedEngineEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> CachedEngineSqliteStorage:
        os.makedirs(config_value["base_dir"], exist_ok=True)
        return cls(inst_data=inst_data, **config_value)

    @property
    def event_storage_data(self) -> ConfigurableClassData | None:
        return ConfigurableClassData(
            __name__,
            CachedEngineEventLogStorage.__name__,
            yaml.dump({"base_dir": _event_logs_directory(self.base_dir)}, default_flow_style=False),
        )


def _runs_directory(base: str) -> str:
    return os.path.join(base, "history", "")


def _event_logs_directory(base: str) -> str:
    return os.path.join(base, "history", "runs", "")


def _schedule_directory(base: str) -> str:
    return os.path.join(base, "schedules")
