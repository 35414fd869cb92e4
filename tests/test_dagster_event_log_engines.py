"""The embedded Dagster instance keeps one SQLAlchemy engine, and its pooled connection, per
event-log file (`orchestration.sqlite_event_log`) instead of building an engine and opening a
SQLite connection for every event. A real instance, a real partitioned run; the events must
all be there, readable by another instance on the same files."""

import sqlite3

import dagster as dg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from appconfig import Settings
from orchestration.instance import ensure_dagster_home
from orchestration.sqlite_event_log import CachedEngineEventLogStorage

hours = dg.HourlyPartitionsDefinition(start_date="2026-12-01-00:00")


@dg.asset(partitions_def=hours, backfill_policy=dg.BackfillPolicy.single_run())
def hourly_counts(context: dg.AssetExecutionContext) -> None:
    context.log.info(f"{len(context.partition_keys)} partitions")


def test_a_partitioned_run_opens_a_few_connections_not_one_per_event(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))  # restored after the test
    home = ensure_dagster_home(settings)
    runs_dir = home / "storage" / "history" / "runs"
    opened: list[str] = []

    def count(dbapi_connection: object, _record: object) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            row = dbapi_connection.execute("PRAGMA database_list").fetchone()
            opened.append(row[2] if row else "")

    event.listen(Engine, "connect", count)
    try:
        with dg.DagsterInstance.get() as instance:
            assert isinstance(instance.event_log_storage, CachedEngineEventLogStorage)
            result = dg.materialize(
                [hourly_counts],
                instance=instance,
                tags={
                    "dagster/asset_partition_range_start": "2026-12-01-00:00",
                    "dagster/asset_partition_range_end": "2026-12-01-23:00",
                },
            )
            assert result.success
            stored = instance.all_logs(result.run_id)
    finally:
        event.remove(Engine, "connect", count)

    run_shard = str(runs_dir / f"{result.run_id}.db")
    # 24 partitions planned and materialized: at least 48 events in the run's own file, each
    # stored on a connection; Dagster's own storage opened one SQLite connection per event
    assert len(stored) >= 48
    assert 1 <= opened.count(run_shard) <= 3, opened.count(run_shard)

    # the same files, read by another instance (as the UI or the daemon would)
    with dg.DagsterInstance.get() as other:
        assert len(other.get_materialized_partitions(hourly_counts.key)) == 24
        assert len(other.all_logs(result.run_id)) == len(stored)
