"""`photo-platform`: the commands people run (the Makefile calls these too)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from appconfig import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()


def _import_app() -> typer.Typer:
    from importers.__main__ import app as importers_app

    return importers_app


# `photo-platform import edges FILE` / `import movielens`: the importers' own commands
app.add_typer(_import_app(), name="import", help="Real data into the landing zone.")


@app.command()
def build(
    start: str | None = typer.Option(None, help="ingest landing partitions from this one first"),
    end: str | None = typer.Option(None, help="last partition to ingest (default: start)"),
) -> None:
    """Ingest (optional), then marts, features, models and home feeds (Dagster jobs). A stage
    whose data is missing (no impressions, no posts) is skipped with the reason."""
    from orchestration.runs import build_everything, ingest_partition_range

    if start is not None and not ingest_partition_range(start, end or start):
        console.print("[red]ingestion run failed[/]")
        raise typer.Exit(1)
    for outcome in build_everything():
        colour = "green" if outcome.success else "red"
        console.print(f"[{colour}]{outcome.name}[/]: {len(outcome.built)} built")
        for asset, reason in outcome.skipped.items():
            console.print(f"  [yellow]skipped[/] {asset}: {reason}")
        if not outcome.success:
            console.print(f"[red]job {outcome.name} failed: see the run in the Dagster UI[/]")
            raise typer.Exit(1)


@app.command()
def ingest(
    start: str = typer.Option(..., help="first hourly partition, e.g. 2026-11-20-00:00"),
    end: str = typer.Option(..., help="last hourly partition (inclusive)"),
) -> None:
    """Ingest a range of landing partitions in one Dagster run (recorded in the instance)."""
    from orchestration.runs import ingest_partition_range

    ok = ingest_partition_range(start, end)
    raise typer.Exit(0 if ok else 1)


@app.command()
def demo(
    users: int = typer.Option(1000, help="number of users to simulate"),
    days: int = typer.Option(3, help="days of activity, ending now"),
    seed: int = typer.Option(7),
    bad_fraction: float = typer.Option(0.02, help="share of deliberately bad events"),
    serve: bool = typer.Option(True, help="end by starting the API (python -m serving)"),
) -> None:
    """The whole job on the embedded profile: generate a workload, ingest it, build the marts,
    features, models and home feeds, then start the API and print example calls."""
    from appconfig import get_settings
    from objectstore import store_from_settings
    from orchestration.runs import (
        build_analytics,
        ingest_partition_range,
        mart_summary,
        raw_table_summary,
        run_job,
    )
    from workload.config import WorkloadConfig
    from workload.generator import generate
    from workload.writer import write_workload

    _quiet_libraries()
    settings = get_settings()
    console.rule(f"[bold]photo-platform demo[/] ({settings.profile} profile)")
    console.print(
        f"ClickHouse: {settings.clickhouse_url}\nObject store: {settings.object_store_url}"
    )
    started = time.perf_counter()
    this_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    config = WorkloadConfig(
        users=users,
        days=days,
        seed=seed,
        bad_fraction=bad_fraction,
        start=this_hour - timedelta(days=days),
    )
    workload = generate(config, progress=True)
    written = write_workload(store_from_settings(settings), settings.landing_prefix, workload)
    partitions = sorted(written.partitions)
    console.print(
        f"generated {len(workload.records):,} records ({workload.manifest['bad_events']:,} bad) "
        f"into {len(partitions)} hourly partitions"
    )
    if not ingest_partition_range(partitions[0], partitions[-1]):
        console.print("[red]ingestion run failed[/]")
        raise typer.Exit(1)
    summary = raw_table_summary(settings, set(partitions))
    table = Table(title="raw tables after ingestion (these partitions)")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("expected", justify="right")
    expected = dict(workload.manifest["valid_by_family"])
    expected["dead_letters"] = workload.manifest["bad_events"]
    for name, rows in summary["rows"].items():
        match = "[green]" if rows == expected.get(name, 0) else "[red]"
        table.add_row(name, f"{rows:,}", f"{match}{expected.get(name, 0):,}")
    console.print(table)
    reasons = Table(title="top dead-letter reasons")
    reasons.add_column("reason")
    reasons.add_column("rows", justify="right")
    for reason, count in summary["reasons"][:10]:
        reasons.add_row(reason, f"{count:,}")
    console.print(reasons)
    if any(rows != expected.get(name, 0) for name, rows in summary["rows"].items()):
        console.print("[red]row counts differ from the generator's manifest[/]")
        raise typer.Exit(1)

    console.print("building the analytics marts (dbt build, with tests and quality checks) ...")
    if not build_analytics():
        console.print("[red]dbt build failed: see the run in the Dagster UI (make ui)[/]")
        raise typer.Exit(1)
    marts = mart_summary(settings)
    overview = Table(title="marts")
    overview.add_column("what")
    overview.add_column("value", justify="right")
    for tier, count in marts["tiers"]:
        overview.add_row(f"users: {tier}", f"{count:,}")
    for day, active in marts["daily_active_users"][-3:]:
        overview.add_row(f"active users {day}", f"{active:,}")
    for tag, score in marts["trending"]:
        overview.add_row(f"trending #{tag}", f"{score:.1f}")
    console.print(overview)

    for job, what in (
        ("build_features", "features: Feast registry, online store, point-in-time training set"),
        ("train_models", "models: feed ranker, who to follow, Explore (MLflow, champion alias)"),
        ("build_feeds", "home feeds: push fan-out of ordinary authors' posts"),
    ):
        console.print(f"{what} ...")
        if not run_job(job):
            console.print(f"[red]job {job} failed: see the run in the Dagster UI (make ui)[/]")
            raise typer.Exit(1)
    _print_models(settings)
    example_user = _active_user(settings)
    console.print(
        f"done in {time.perf_counter() - started:.1f} s. Dagster UI: [bold]make ui[/]; "
        "notebooks: notebooks/"
    )
    if not serve:
        return
    console.rule("[bold]the API[/] (Ctrl-C stops it)")
    console.print(f"a user with history to try: [bold]{example_user}[/]")
    from serving.__main__ import main as serve_api

    serve_api()


def _quiet_libraries() -> None:
    """MLflow's per-artifact progress bars and info lines would bury the demo's own output."""
    import logging
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in ("mlflow", "py4j", "feast"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _active_user(settings: Settings) -> int:
    """The viewer with the most impressions: a user whose feed shows the ranking at work."""
    from warehouse import clickhouse_client

    marts = f"{settings.analytics_schema}_marts"
    with clickhouse_client(settings.clickhouse_url) as client:
        rows = client.query(
            f"SELECT viewer_id FROM {marts}.fct_training_impressions "
            "GROUP BY viewer_id ORDER BY count() DESC LIMIT 1"
        ).result_rows
    return int(rows[0][0]) if rows else 0


def _print_models(settings: Settings) -> None:
    """The champions in the registry with their headline holdout metrics."""
    from mlflow import MlflowClient

    from ml.tracking import tracking_uri

    client = MlflowClient(tracking_uri(settings))
    table = Table(title="models in the MLflow registry (alias champion)")
    for column in ("model", "version", "metrics (holdout)"):
        table.add_column(column)
    for name in ("feed-ranker", "who-to-follow", "explore"):
        try:
            version = client.get_model_version_by_alias(name, "champion")
        except Exception:  # no champion yet: say so rather than fail the demo
            table.add_row(name, "-", "no champion")
            continue
        metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
        shown = {
            k: v
            for k, v in sorted(metrics.items())
            if k.endswith(("_auc", "ndcg_at_10", "recall_at_10", "_ndcg@10", "_recall@10"))
        }
        text = ", ".join(f"{k} {v:.3f}" for k, v in list(shown.items())[:8])
        table.add_row(name, str(version.version), text)
    console.print(table)


if __name__ == "__main__":
    app()
