"""Great Expectations on the marts, as Dagster asset checks that run after `dbt build`.

ClickHouse computes the summaries (column minima and maxima, the newest event, the last two
days' volume); GE validates them, so the checks cost the same on 1k rows or 1B.
"""

from collections.abc import Iterable, Sequence
from datetime import timedelta

import dagster as dg
import pandas as pd
from clickhouse_connect.driver.client import Client

from appconfig import get_settings
from orchestration.quality import suite_result
from orchestration.resources import ClickHouseResource

COUNT_TYPES = ("UInt", "Int")
FRESHNESS = timedelta(hours=24)
VOLUME_BOUNDS = (0.5, 2.0)  # the newest day's DAU against the previous day's


def mart_check_specs(mart_keys: Sequence[dg.AssetKey]) -> list[dg.AssetCheckSpec]:
    specs = []
    for key in mart_keys:
        specs.append(
            dg.AssetCheckSpec(
                "no_negative_counts", asset=key, description="GE: every count column is >= 0."
            )
        )
        specs.append(
            dg.AssetCheckSpec(
                "rates_within_0_1", asset=key, description="GE: every *_rate column is in [0, 1]."
            )
        )
    names = {k.path[-1]: k for k in mart_keys}
    if "fct_training_impressions" in names:
        specs.append(
            dg.AssetCheckSpec(
                "fresh",
                asset=names["fct_training_impressions"],
                description=f"GE: the newest labelled impression is within {FRESHNESS} of the newest raw impression.",
            )
        )
    if "fct_daily_active_users" in names:
        specs.append(
            dg.AssetCheckSpec(
                "volume_within_bounds",
                asset=names["fct_daily_active_users"],
                description=f"GE: the newest day's active users are within {VOLUME_BOUNDS} x the previous day's.",
            )
        )
    return specs


def _columns(client: Client, database: str, table: str) -> list[tuple[str, str]]:
    return [
        (str(n), str(t))
        for n, t in client.query(
            "SELECT name, type FROM system.columns WHERE database = %(db)s AND table = %(t)s ORDER BY position",
            parameters={"db": database, "t": table},
        ).result_rows
    ]


SIGNED_BY_DESIGN = ("velocity", "_delta", "_change", "_diff", "_score")


def _is_count(name: str, column_type: str) -> bool:
    """Integer columns are counts, except ids, positions and changes that may go negative."""
    base = column_type.removeprefix("Nullable(").removeprefix("LowCardinality(")
    return (
        base.startswith(COUNT_TYPES)
        and not name.endswith("_id")
        and name != "position"
        and not name.endswith(SIGNED_BY_DESIGN)
    )


def check_marts(
    client: Client, database: str, raw_database: str, mart_keys: Sequence[dg.AssetKey]
) -> Iterable[dg.AssetCheckResult]:
    import great_expectations.expectations as gxe

    for key in mart_keys:
        table = key.path[-1]
        columns = _columns(client, database, table)
        counts = [n for n, t in columns if _is_count(n, t)]
        rates = [n for n, _ in columns if n.endswith("_rate")]
        aggregates = [f"min(`{c}`) AS `{c}`" for c in counts] + [
            f"min(`{c}`) AS `{c}__min`, max(`{c}`) AS `{c}__max`" for c in rates
        ]
        summary = (
            client.query_df(f"SELECT {', '.join(aggregates)} FROM {database}.{table}")
            if aggregates
            else pd.DataFrame()
        )
        ok, failed = suite_result(
            f"{table}_counts",
            summary,
            [gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0) for c in counts],
        )
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name="no_negative_counts",
            passed=ok,
            metadata={
                "columns": dg.MetadataValue.json(counts),
                "failed": dg.MetadataValue.json(failed),
            },
        )
        ok, failed = suite_result(
            f"{table}_rates",
            summary,
            [
                gxe.ExpectColumnValuesToBeBetween(column=f"{c}__{end}", min_value=0, max_value=1)
                for c in rates
                for end in ("min", "max")
            ],
        )
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name="rates_within_0_1",
            passed=ok,
            metadata={
                "columns": dg.MetadataValue.json(rates),
                "failed": dg.MetadataValue.json(failed),
            },
        )

    names = {k.path[-1]: k for k in mart_keys}
    if "fct_training_impressions" in names:
        newest_raw, newest_label = client.query(
            f"SELECT (SELECT max(occurred_at) FROM {raw_database}.views WHERE event_type = 'impression'),"
            f" (SELECT max(impressed_at) FROM {database}.fct_training_impressions)"
        ).result_rows[0]
        frame = pd.DataFrame({"newest_label": [pd.Timestamp(newest_label)]})
        ok, failed = suite_result(
            "fresh",
            frame,
            [
                gxe.ExpectColumnValuesToBeBetween(
                    column="newest_label", min_value=pd.Timestamp(newest_raw) - FRESHNESS
                )
            ],
        )
        yield dg.AssetCheckResult(
            asset_key=names["fct_training_impressions"],
            check_name="fresh",
            passed=ok,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "newest_raw_impression": str(newest_raw),
                "newest_labelled": str(newest_label),
                "failed": dg.MetadataValue.json(failed),
            },
        )
    if "fct_daily_active_users" in names:
        days = client.query_df(
            f"SELECT * FROM {database}.fct_daily_active_users ORDER BY 1 DESC LIMIT 2"
        )
        value_column = next(
            (c for c in days.columns if "active" in c and c != days.columns[0]), days.columns[-1]
        )
        ratio = (
            float(days[value_column].iloc[0] / days[value_column].iloc[1])
            if len(days) == 2 and days[value_column].iloc[1]
            else 1.0
        )
        ok, failed = suite_result(
            "volume",
            pd.DataFrame({"ratio": [ratio]}),
            [
                gxe.ExpectColumnValuesToBeBetween(
                    column="ratio", min_value=VOLUME_BOUNDS[0], max_value=VOLUME_BOUNDS[1]
                )
            ],
        )
        yield dg.AssetCheckResult(
            asset_key=names["fct_daily_active_users"],
            check_name="volume_within_bounds",
            passed=ok,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "ratio_to_previous_day": ratio,
                "column": value_column,
                "failed": dg.MetadataValue.json(failed),
            },
        )


def build_mart_checks(mart_keys: Sequence[dg.AssetKey]) -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(specs=mart_check_specs(mart_keys), name="mart_quality", can_subset=True)
    def mart_quality(context: dg.AssetCheckExecutionContext, clickhouse: ClickHouseResource):
        settings = get_settings()
        selected = {(c.asset_key, c.name) for c in context.selected_asset_check_keys}
        with clickhouse.client() as client:
            for result in check_marts(
                client, settings.marts_database, clickhouse.raw_database, mart_keys
            ):
                if (result.asset_key, result.check_name) in selected:
                    yield result

    return mart_quality
