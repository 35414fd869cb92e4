"""The Great Expectations checks on the raw tables, validated a few partitions at a time: they pass
on clean loads, name a bad row wherever it sits, and count every row once however the
partitions are grouped. Real chDB, real GE."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from appconfig import Settings
from ingestion.landing_source import landing_batches
from ingestion.loader import load_records
from objectstore import open_store
from orchestration.ingestion.checks import run_raw_table_checks
from workload.config import WorkloadConfig
from workload.generator import generate
from workload.writer import write_workload


@pytest.fixture
def loaded(settings: Settings, clickhouse: Client, tmp_path: Any) -> tuple[list[str], int]:
    """A day of a small workload loaded; its hourly partitions and the engagements' row count."""
    store = open_store(f"file://{tmp_path}/objects")
    start = datetime(2026, 12, 1, tzinfo=UTC)
    config = WorkloadConfig(users=120, days=1, seed=3, start=start, bad_fraction=0.0)
    workload = generate(config, progress=False)
    written = write_workload(store, "landing/events", workload)
    partitions = sorted(written.partitions)
    for _, records in landing_batches(store, "landing/events", partitions):
        load_records(
            clickhouse, settings.clickhouse_raw_database, records, tolerance=timedelta(days=400)
        )
    rows = clickhouse.query(
        f"SELECT count() FROM {settings.clickhouse_raw_database}.engagements"
    ).result_rows[0][0]
    return partitions, int(rows)


def _contract(results: Any, family: str) -> Any:
    (result,) = [
        r
        for r in results
        if r.asset_key.path == ["raw", family] and r.check_name == "matches_contract"
    ]
    return result


def test_checks_in_small_frames_count_every_row_and_find_a_bad_one_in_a_late_partition(
    settings: Settings, clickhouse: Client, loaded: tuple[list[str], int]
) -> None:
    partitions, engagements = loaded
    database = settings.clickhouse_raw_database
    assert engagements > 200
    per_frame = engagements // 3  # three or four frames of engagements, each a few hours

    in_pieces = _contract(
        run_raw_table_checks(clickhouse, database, partitions, rows_per_frame=per_frame),
        "engagements",
    )
    assert in_pieces.passed
    assert in_pieces.metadata["rows_checked"].value == engagements

    # one row of the last partition with an event type the family does not have
    last = partitions[-1]
    clickhouse.command(
        f"INSERT INTO {database}.engagements SELECT * REPLACE ('teleport' AS event_type) "
        f"FROM {database}.engagements WHERE _partition_key = '{last}' LIMIT 1"
    )
    failing = _contract(
        run_raw_table_checks(clickhouse, database, partitions, rows_per_frame=per_frame),
        "engagements",
    )
    assert not failing.passed
    assert failing.metadata["rows_checked"].value == engagements + 1
    (failure,) = failing.metadata["failed"].value.items()
    assert failure[0] == "expect_column_values_to_be_in_set:event_type"
    assert "teleport" in failure[1]
