"""Great Expectations suites on the raw tables, reported as Dagster asset checks.

They run inside the ingestion step, on the partitions it just loaded: the contract's columns,
no nulls where the contract requires a value, only the family's event types, fresh data, and a
dead-letter share that stays below a threshold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import dagster as dg
import pandas as pd
from clickhouse_connect.driver.client import Client

from contracts.catalog import EVENT_TYPES_BY_FAMILY, FAMILIES
from ingestion.landing import hour_of_partition
from orchestration.quality import suite_result as _suite_result
from warehouse.raw_tables import DEAD_LETTER_TABLE, RAW_TABLES

FRESHNESS = timedelta(hours=24)
MAX_DEAD_LETTER_SHARE = 0.2
ROWS_PER_FRAME = 500_000  # rows of one table GE validates at a time (memory, not correctness)


def raw_table_check_specs() -> list[dg.AssetCheckSpec]:
    specs = []
    for family in FAMILIES:
        key = dg.AssetKey(["raw", family])
        specs.append(
            dg.AssetCheckSpec(
                "matches_contract",
                asset=key,
                description=(
                    "GE: the table's columns are the contract's, required fields are never null, "
                    "event_type is one of the family's types."
                ),
            )
        )
        specs.append(
            dg.AssetCheckSpec(
                "fresh",
                asset=key,
                description=(
                    f"GE: the newest event occurred within {FRESHNESS} of the end of the newest partition "
                    "loaded (warns: a quiet family can be legitimately stale)."
                ),
            )
        )
    dead = dg.AssetKey(["raw", DEAD_LETTER_TABLE])
    specs.append(dg.AssetCheckSpec("every_row_has_a_reason", asset=dead))
    specs.append(
        dg.AssetCheckSpec(
            "dead_letter_share",
            asset=dead,
            description=(
                f"Warns when more than {MAX_DEAD_LETTER_SHARE:.0%} of the loaded partitions' records are dead letters."
            ),
        )
    )
    return specs


def _partition_chunks(
    client: Client, database: str, table: str, partition_keys: Sequence[str], max_rows: int
) -> list[list[str]]:
    """The partitions in groups of at most `max_rows` rows (a bigger partition alone), so that a
    backfill of thousands of hours never holds every row in one pandas frame."""
    rows_by_key = client.query(
        f"SELECT _partition_key, count() FROM {database}.{table} "
        "WHERE _partition_key IN %(keys)s GROUP BY _partition_key",
        parameters={"keys": list(partition_keys)},
    ).result_rows
    counts: dict[str, int] = {str(key): int(n) for key, n in rows_by_key}
    chunks: list[list[str]] = []
    current: list[str] = []
    rows = 0
    for key in sorted(k for k in partition_keys if counts.get(k)):
        if current and rows + counts[key] > max_rows:
            chunks.append(current)
            current, rows = [], 0
        current.append(key)
        rows += counts[key]
    if current or not chunks:
        chunks.append(current or list(partition_keys))  # no rows: the column check still runs
    return chunks


def _partition_rows(
    client: Client, database: str, table: str, partition_keys: Sequence[str]
) -> pd.DataFrame:
    """The rows loaded for these partitions (without payloads); an empty frame keeps the columns."""
    frame = client.query_df(
        f"SELECT * EXCEPT (payload) FROM {database}.{table} WHERE _partition_key IN %(keys)s",
        parameters={"keys": list(partition_keys)},
    )
    if frame.empty and not len(frame.columns):
        names = [row[0] for row in client.query(f"DESCRIBE TABLE {database}.{table}").result_rows]
        frame = pd.DataFrame(columns=[n for n in names if n != "payload"])
    return frame


def run_raw_table_checks(
    client: Client,
    database: str,
    partition_keys: Sequence[str],
    *,
    rows_per_frame: int = ROWS_PER_FRAME,
) -> Iterable[dg.AssetCheckResult]:
    import great_expectations.expectations as gxe

    results: list[dg.AssetCheckResult] = []
    newest_end = (
        hour_of_partition(max(partition_keys)) + timedelta(hours=1) if partition_keys else None
    )
    loaded = 0
    for family, table in RAW_TABLES.items():
        key = dg.AssetKey(["raw", family])
        required = [spec.name for spec in table.fields if spec.required]
        ok, checked = True, 0
        failed: dict[str, Any] = {}
        for chunk in _partition_chunks(client, database, family, partition_keys, rows_per_frame):
            frame = _partition_rows(client, database, family, chunk)
            checked += len(frame)
            chunk_ok, chunk_failed = _suite_result(
                f"raw_{family}",
                frame,
                [
                    gxe.ExpectTableColumnsToMatchSet(
                        column_set=[n for n, _ in table.columns() if n != "payload"],
                        exact_match=True,
                    ),
                    *(gxe.ExpectColumnValuesToNotBeNull(column=name) for name in required),
                    gxe.ExpectColumnValuesToBeInSet(
                        column="event_type", value_set=list(EVENT_TYPES_BY_FAMILY[family])
                    ),
                ],
            )
            del frame
            ok = ok and chunk_ok
            for name, detail in chunk_failed.items():
                failed.setdefault(name, detail)  # the first chunk's examples of each failure
        loaded += checked
        results.append(
            dg.AssetCheckResult(
                asset_key=key,
                check_name="matches_contract",
                passed=ok,
                metadata={"rows_checked": checked, "failed": dg.MetadataValue.json(failed)},
            )
        )
        newest = client.query(f"SELECT max(occurred_at) FROM {database}.{family}").result_rows[0][0]
        fresh_ok = True
        if newest_end is not None and checked:
            fresh_frame = pd.DataFrame({"occurred_at": [pd.Timestamp(newest).tz_localize("UTC")]})
            fresh_ok, failed = _suite_result(
                f"fresh_{family}",
                fresh_frame,
                [
                    gxe.ExpectColumnMaxToBeBetween(
                        column="occurred_at", min_value=newest_end - FRESHNESS
                    )
                ],
            )
        results.append(
            dg.AssetCheckResult(
                asset_key=key,
                check_name="fresh",
                passed=fresh_ok,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"newest_event": str(newest), "newest_partition_end": str(newest_end)},
            )
        )

    dead_key = dg.AssetKey(["raw", DEAD_LETTER_TABLE])
    dead = _partition_rows(client, database, DEAD_LETTER_TABLE, partition_keys)
    dead = (
        dead.assign(reason_count=dead["reasons"].map(len))
        if len(dead)
        else dead.assign(reason_count=[])
    )
    ok, failed = _suite_result(
        "dead_letters",
        dead,
        [gxe.ExpectColumnValuesToBeBetween(column="reason_count", min_value=1)],
    )
    results.append(
        dg.AssetCheckResult(
            asset_key=dead_key,
            check_name="every_row_has_a_reason",
            passed=ok,
            metadata={"rows_checked": len(dead), "failed": dg.MetadataValue.json(failed)},
        )
    )
    share = len(dead) / max(1, len(dead) + loaded)
    results.append(
        dg.AssetCheckResult(
            asset_key=dead_key,
            check_name="dead_letter_share",
            passed=share <= MAX_DEAD_LETTER_SHARE,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"share": float(share)},
        )
    )
    return results
