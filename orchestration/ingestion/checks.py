"""Great Expectations suites on the raw tables, reported as Dagster asset checks.

They run inside the ingestion step, on the partitions it just loaded: the contract's columns,
no nulls where the contract requires a value, only the family's event types, fresh data, and a
dead-letter share that stays below a threshold. GE validates a profile of those partitions
aggregated in ClickHouse (`profile.py`): the same expectations, without reading every row.
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
from orchestration.ingestion.profile import (
    TableProfile,
    null_examples,
    profile_table,
    reason_counts,
    without_reason_examples,
)
from orchestration.quality import suite_result as _suite_result
from warehouse.raw_tables import DEAD_LETTER_TABLE, RAW_TABLES

FRESHNESS = timedelta(hours=24)
MAX_DEAD_LETTER_SHARE = 0.2


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


def _contract_failures(
    client: Client,
    database: str,
    family: str,
    partition_keys: Sequence[str],
    profile: TableProfile,
    failed: dict[str, str],
) -> dict[str, Any]:
    """GE's failures, with the rows they are about: a null count names a few event ids, a bad
    event_type its rows."""
    detailed: dict[str, Any] = dict(failed)
    frame = profile.frame
    for name in list(detailed):
        kind, _, column = name.partition(":")
        if kind == "expect_column_values_to_be_between" and column in frame:
            nulls = int(frame[column].sum())
            examples = null_examples(
                client, database, family, partition_keys, column, profile.types[column]
            )
            detailed[name] = f"{nulls} null(s), e.g. event_id {examples}"
        elif kind == "expect_column_values_to_be_in_set" and column == "event_type":
            allowed = EVENT_TYPES_BY_FAMILY[family]
            bad = {
                str(value): n
                for value, n in zip(frame["event_type"], profile.rows, strict=True)
                if value is not None and value not in allowed
            }
            detailed[name] = f"{detailed[name]} rows: {bad}"[:300]
    return detailed


def run_raw_table_checks(
    client: Client, database: str, partition_keys: Sequence[str]
) -> Iterable[dg.AssetCheckResult]:
    """The checks of the partitions just loaded: GE validates a profile aggregated in SQL
    (`profile.py`), so its cost and memory do not grow with the rows loaded."""
    import great_expectations.expectations as gxe

    results: list[dg.AssetCheckResult] = []
    newest_end = (
        hour_of_partition(max(partition_keys)) + timedelta(hours=1) if partition_keys else None
    )
    loaded = 0
    for family, table in RAW_TABLES.items():
        key = dg.AssetKey(["raw", family])
        required = [spec.name for spec in table.fields if spec.required]
        profile = profile_table(client, database, family, partition_keys, required)
        checked = profile.total_rows
        ok, failed = _suite_result(
            f"raw_{family}",
            profile.frame,
            [
                gxe.ExpectTableColumnsToMatchSet(
                    column_set=[n for n, _ in table.columns() if n != "payload"],
                    exact_match=True,
                ),
                gxe.ExpectColumnValuesToNotBeNull(column="event_type"),
                *(
                    gxe.ExpectColumnValuesToBeBetween(column=name, min_value=0, max_value=0)
                    for name in required
                    if name != "event_type"
                ),
                gxe.ExpectColumnValuesToBeInSet(
                    column="event_type", value_set=list(EVENT_TYPES_BY_FAMILY[family])
                ),
            ],
        )
        if failed:
            failed = _contract_failures(client, database, family, partition_keys, profile, failed)
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
    reasons = reason_counts(client, database, DEAD_LETTER_TABLE, partition_keys)
    dead_rows = int(reasons["rows"].sum())
    ok, failed = _suite_result(
        "dead_letters",
        reasons,
        [gxe.ExpectColumnValuesToBeBetween(column="reason_count", min_value=1)],
    )
    if failed:
        without = int(reasons.loc[reasons["reason_count"] < 1, "rows"].sum())
        examples = without_reason_examples(client, database, DEAD_LETTER_TABLE, partition_keys)
        failed = {name: f"{without} without a reason, e.g. {examples}" for name in failed}
    results.append(
        dg.AssetCheckResult(
            asset_key=dead_key,
            check_name="every_row_has_a_reason",
            passed=ok,
            metadata={"rows_checked": dead_rows, "failed": dg.MetadataValue.json(failed)},
        )
    )
    share = dead_rows / max(1, dead_rows + loaded)
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
