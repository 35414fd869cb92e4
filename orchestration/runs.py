"""Launch Dagster runs from the command line and read back what they loaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from appconfig import Settings, get_settings
from orchestration.ingestion.sensors import RANGE_END, RANGE_START
from orchestration.instance import ensure_dagster_home
from warehouse import RAW_TABLES, clickhouse_client
from warehouse.raw_tables import DEAD_LETTER_TABLE

# Dagster's run log at INFO: the CLI points stderr at `<data dir>/logs/platform.log` (the console
# shows only the platform's progress), so the file has every step of every run
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def ingest_partition_range(start: str, end: str, settings: Settings | None = None) -> bool:
    """One run of the ingestion asset over [start, end], recorded in the persistent instance."""
    from orchestration.ingestion.assets import raw_events
    from orchestration.resources import build_resources

    settings = settings or get_settings()
    ensure_dagster_home(settings)
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(
            [raw_events],
            resources=build_resources(),
            instance=instance,
            tags={RANGE_START: start, RANGE_END: end},
            run_config=RUN_CONFIG,
            raise_on_error=False,
        )
    return result.success


def run_job(name: str, settings: Settings | None = None) -> bool:
    """One run of a job of the code location, in process, recorded in the persistent instance
    (so it shows in the UI like any other run)."""
    return run_job_outcome(name, settings).success


BUILD_JOBS = ("build_analytics", "build_features", "train_models", "build_feeds")


@dataclass
class JobOutcome:
    name: str
    success: bool
    built: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # asset -> why it had nothing to do


def run_job_outcome(name: str, settings: Settings | None = None) -> JobOutcome:
    """One run of a job, in process and recorded in the persistent instance (so it shows in the
    UI like any other run): whether it succeeded, which assets it built and which it skipped
    (with the reason)."""
    from orchestration.definitions import defs
    from orchestration.skipping import SKIPPED

    settings = settings or get_settings()
    ensure_dagster_home(settings)
    job = defs().resolve_job_def(name)
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            run_config=RUN_CONFIG,
            raise_on_error=False,
        )
    outcome = JobOutcome(name, result.success)
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        key = materialization.asset_key.to_user_string()
        reason = materialization.metadata.get(SKIPPED)
        if reason is not None:
            outcome.skipped[key] = str(reason.value)
        else:
            outcome.built.append(key)
    return outcome


def build_everything(settings: Settings | None = None) -> list[JobOutcome]:
    """Marts, features, models, feeds: the jobs after ingestion, in order, stopping at the first
    that fails. Stages whose data is missing (no impressions, no posts) are skipped, not failed."""
    outcomes = []
    for name in BUILD_JOBS:
        outcome = run_job_outcome(name, settings)
        outcomes.append(outcome)
        if not outcome.success:
            break
    return outcomes


def build_analytics(settings: Settings | None = None) -> bool:
    """One `dbt build` run (models, tests, mart checks) recorded in the persistent instance."""
    return run_job("build_analytics", settings)


def mart_summary(settings: Settings) -> dict[str, Any]:
    """A few numbers people look at first: tiers, the newest day's activity, trending tags."""
    marts = settings.marts_database
    with clickhouse_client(settings.clickhouse_url) as client:
        tiers = client.query(
            f"SELECT tier, count() FROM {marts}.dim_users GROUP BY tier ORDER BY 2 DESC"
        ).result_rows
        dau = client.query(
            f"SELECT activity_date, active_users FROM {marts}.fct_daily_active_users ORDER BY activity_date"
        ).result_rows
        trending = client.query(
            f"SELECT hashtag, max(trending_score) AS score FROM {marts}.fct_hashtag_trends "
            "GROUP BY hashtag ORDER BY score DESC LIMIT 5"
        ).result_rows
    return {"tiers": tiers, "daily_active_users": dau, "trending": trending}


def raw_table_summary(settings: Settings, partition_keys: set[str]) -> dict[str, Any]:
    keys = sorted(partition_keys)
    db = settings.clickhouse_raw_database
    with clickhouse_client(settings.clickhouse_url) as client:
        rows = {
            table: int(
                client.query(
                    f"SELECT count() FROM {db}.{table} FINAL WHERE _partition_key IN %(keys)s",
                    parameters={"keys": keys},
                ).result_rows[0][0]
            )
            for table in [*RAW_TABLES, DEAD_LETTER_TABLE]
        }
        # duplicates name their original's address; count them as one kind of reason
        reasons = client.query(
            "SELECT if(startsWith(r, 'event_id: duplicate'), 'event_id: duplicate of an ingested event', r)"
            f" AS reason, count() AS n FROM {db}.{DEAD_LETTER_TABLE} FINAL ARRAY JOIN reasons AS r "
            "WHERE _partition_key IN %(keys)s GROUP BY reason ORDER BY n DESC, reason LIMIT 20",
            parameters={"keys": keys},
        ).result_rows
    return {"rows": rows, "reasons": [(r, int(n)) for r, n in reasons]}
