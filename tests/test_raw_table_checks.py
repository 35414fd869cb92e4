"""The Great Expectations checks on the raw tables, validated on a profile aggregated in SQL: they
pass on clean loads counting every row, and name a bad event type, a null in a required column
or a dead letter without a reason wherever it sits. Real chDB, real GE."""

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


def _check(results: Any, table: str, name: str) -> Any:
    (result,) = [r for r in results if r.asset_key.path == ["raw", table] and r.check_name == name]
    return result


def test_checks_count_every_row_and_find_a_bad_event_type_in_the_last_partition(
    settings: Settings, clickhouse: Client, loaded: tuple[list[str], int]
) -> None:
    partitions, engagements = loaded
    database = settings.clickhouse_raw_database
    assert engagements > 200

    clean = run_raw_table_checks(clickhouse, database, partitions)
    assert all(r.passed for r in clean if r.check_name == "matches_contract")
    assert _contract(clean, "engagements").metadata["rows_checked"].value == engagements
    # only the loaded partitions are counted
    assert (
        _contract(run_raw_table_checks(clickhouse, database, partitions[:1]), "engagements")
        .metadata["rows_checked"]
        .value
        < engagements
    )

    # one row of the last partition with an event type the family does not have
    last = partitions[-1]
    clickhouse.command(
        f"INSERT INTO {database}.engagements SELECT * REPLACE ('teleport' AS event_type) "
        f"FROM {database}.engagements WHERE _partition_key = '{last}' LIMIT 1"
    )
    failing = _contract(run_raw_table_checks(clickhouse, database, partitions), "engagements")
    assert not failing.passed
    assert failing.metadata["rows_checked"].value == engagements + 1
    (failure,) = failing.metadata["failed"].value.items()
    assert failure[0] == "expect_column_values_to_be_in_set:event_type"
    assert "teleport" in failure[1]


def test_a_null_in_a_required_column_fails_naming_its_event(
    settings: Settings, clickhouse: Client, loaded: tuple[list[str], int]
) -> None:
    partitions, engagements = loaded
    database = settings.clickhouse_raw_database
    # the contract's types make required columns non-nullable; a table whose column was made
    # nullable (an old or hand-edited table) is what lets a null through
    clickhouse.command(
        f"ALTER TABLE {database}.engagements MODIFY COLUMN producer Nullable(String)",
        settings={"mutations_sync": 2},
    )
    assert _contract(run_raw_table_checks(clickhouse, database, partitions), "engagements").passed

    bad_id = "00000000-0000-4000-8000-000000000017"
    clickhouse.command(
        f"INSERT INTO {database}.engagements SELECT * REPLACE "
        f"(NULL AS producer, toUUID('{bad_id}') AS event_id) "
        f"FROM {database}.engagements WHERE _partition_key = '{partitions[-1]}' LIMIT 1"
    )
    failing = _contract(run_raw_table_checks(clickhouse, database, partitions), "engagements")
    assert not failing.passed
    assert failing.metadata["rows_checked"].value == engagements + 1
    (failure,) = failing.metadata["failed"].value.items()
    assert failure[0].endswith(":producer")
    assert "1 null" in failure[1] and bad_id in failure[1]


def test_a_dead_letter_without_a_reason_fails_naming_it(
    settings: Settings, clickhouse: Client, loaded: tuple[list[str], int]
) -> None:
    partitions, _ = loaded
    database = settings.clickhouse_raw_database
    columns = "_source, _position, source_kind, reasons, payload, _partition_key, _received_at"
    clickhouse.command(
        f"INSERT INTO {database}.dead_letters ({columns}) VALUES "
        f"('landing/a.jsonl', 3, 'file', ['bad json'], '{{', '{partitions[0]}', now64(3)), "
        f"('landing/b.jsonl', 7, 'file', ['bad json', 'no id'], '{{', '{partitions[-1]}', now64(3))"
    )
    with_reasons = _check(
        run_raw_table_checks(clickhouse, database, partitions),
        "dead_letters",
        "every_row_has_a_reason",
    )
    assert with_reasons.passed
    assert with_reasons.metadata["rows_checked"].value == 2

    clickhouse.command(
        f"INSERT INTO {database}.dead_letters ({columns}) VALUES "
        f"('landing/c.jsonl', 11, 'file', [], '{{', '{partitions[-1]}', now64(3))"
    )
    results = run_raw_table_checks(clickhouse, database, partitions)
    failing = _check(results, "dead_letters", "every_row_has_a_reason")
    assert not failing.passed
    assert failing.metadata["rows_checked"].value == 3
    (failure,) = failing.metadata["failed"].value.items()
    assert failure[0] == "expect_column_values_to_be_between:reason_count"
    assert "1 without a reason" in failure[1] and "landing/c.jsonl:11" in failure[1]
    assert _check(results, "dead_letters", "dead_letter_share").passed
