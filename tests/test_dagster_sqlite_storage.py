"""The embedded Dagster instance stores events without an fsync per event (see
`orchestration.sqlite_storage`): its connections run with synchronous=NORMAL, a kept-open
connection spares each close a checkpoint, and no other SQLite database of the process is
touched. A real instance, a real partitioned run."""

import sqlite3
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from appconfig import Settings
from orchestration.instance import ensure_dagster_home
from orchestration.sqlite_storage import kept_files

SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}

hours = dg.HourlyPartitionsDefinition(start_date="2026-12-01-00:00")


@dg.asset(partitions_def=hours, backfill_policy=dg.BackfillPolicy.single_run())
def hourly_numbers(context: dg.AssetExecutionContext) -> None:
    context.log.info(f"{len(context.partition_keys)} partitions")


def _synchronous(path: Path) -> str:
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return SYNCHRONOUS[conn.execute(text("PRAGMA synchronous")).scalar_one()]
    finally:
        engine.dispose()


def test_storage_connections_skip_the_fsync_and_the_checkpoint_other_databases_do_not(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))  # restored after the test
    home = ensure_dagster_home(settings)
    storage = home / "storage" / "history" / "runs"
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(
            [hourly_numbers],
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": "2026-12-01-00:00",
                "dagster/asset_partition_range_end": "2026-12-01-23:00",
            },
        )
        assert result.success
        index = storage / "index.db"
        run_shard = storage / f"{result.run_id}.db"
        assert index.exists() and run_shard.exists()
        materialized = instance.get_materialized_partitions(hourly_numbers.key)
    assert len(materialized) == 24  # the events of every partition were stored

    # Dagster closed its connections after each event: with no keeper the last close would
    # have checkpointed the log into the database and deleted it
    assert {str(index), str(run_shard)} <= set(kept_files())
    assert Path(f"{index}-wal").exists()
    assert _synchronous(index) == "NORMAL"

    elsewhere = tmp_path / "someone_else.db"
    sqlite3.connect(elsewhere).close()
    assert _synchronous(elsewhere) == "FULL"  # SQLite's default, untouched
    assert str(elsewhere) not in kept_files()
