"""Ingestion end to end on real chDB through Dagster: generated workload in, exact counts out."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import dagster as dg
import pytest
from clickhouse_connect.driver.client import Client

from appconfig import Settings
from objectstore import store_from_settings
from orchestration.runs import ingest_partition_range, raw_table_summary
from warehouse import clickhouse_client
from workload.config import WorkloadConfig
from workload.generator import Workload, generate
from workload.writer import write_workload

REASON_OF_KIND = {
    "malformed_json": "payload: malformed JSON",
    "unknown_type": "event_type: unknown event type",
    "future_timestamp": "occurred_at: more than 60 min in the future",
    "duplicate": "event_id: duplicate of the event at",
}


@pytest.fixture
def workload() -> Workload:
    return generate(
        WorkloadConfig(
            users=150, days=2, seed=3, bad_fraction=0.03, start=datetime(2026, 11, 1, tzinfo=UTC)
        ),
        progress=False,
    )


def _counts(client: Client, db: str, table: str) -> int:
    return int(client.query(f"SELECT count() FROM {db}.{table} FINAL").result_rows[0][0])


def test_materialized_partitions_hold_exactly_the_generated_events(
    settings: Settings, workload: Workload
) -> None:
    written = write_workload(store_from_settings(settings), settings.landing_prefix, workload)
    partitions = sorted(written.partitions)
    assert ingest_partition_range(partitions[0], partitions[-1], settings)

    summary = raw_table_summary(settings, set(partitions))
    manifest = workload.manifest
    expected = {**manifest["valid_by_family"], "dead_letters": manifest["bad_events"]}
    assert {k: v for k, v in summary["rows"].items() if v or expected.get(k)} == {
        k: v for k, v in expected.items() if v
    }

    db = settings.clickhouse_raw_database
    with clickhouse_client(settings.clickhouse_url) as client:
        union = " UNION ALL ".join(
            f"SELECT event_type FROM {db}.{family} FINAL" for family in manifest["valid_by_family"]
        )
        rows = client.query(f"SELECT event_type, count() FROM ({union}) GROUP BY event_type")
        by_type = {str(t): int(n) for t, n in rows.result_rows}
        assert by_type == {t: n for t, n in manifest["valid_by_type"].items() if n}
        reasons = [
            list(r) for (r,) in client.query(f"SELECT reasons FROM {db}.dead_letters").result_rows
        ]
        assert all(reasons), "every dead letter carries at least one reason"
        # each injected kind shows up with its reason, as often as it was injected
        found: Counter[str] = Counter()
        for kind, prefix in REASON_OF_KIND.items():
            found[kind] = sum(any(r.startswith(prefix) for r in rs) for rs in reasons)
        for kind in REASON_OF_KIND:
            assert found[kind] == manifest["bad_by_kind"].get(kind, 0), (kind, found[kind])


def test_second_materialization_adds_nothing(settings: Settings, workload: Workload) -> None:
    written = write_workload(store_from_settings(settings), settings.landing_prefix, workload)
    partitions = sorted(written.partitions)
    assert ingest_partition_range(partitions[0], partitions[-1], settings)
    db = settings.clickhouse_raw_database
    tables = [*workload.manifest["valid_by_family"], "dead_letters"]
    with clickhouse_client(settings.clickhouse_url) as client:
        before = {t: _counts(client, db, t) for t in tables}
        raw_before = {
            t: int(client.query(f"SELECT count() FROM {db}.{t}").result_rows[0][0]) for t in tables
        }
    assert ingest_partition_range(partitions[0], partitions[-1], settings)
    with clickhouse_client(settings.clickhouse_url) as client:
        after = {t: _counts(client, db, t) for t in tables}
        raw_after = {
            t: int(client.query(f"SELECT count() FROM {db}.{t}").result_rows[0][0]) for t in tables
        }
    assert after == before
    assert raw_after == raw_before, "not even unmerged copies: the loader inserted nothing"

    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records()
        assert len(records) == 2 and all(r.dagster_run.is_success for r in records)
