"""`photo-platform`: the commands people run (the Makefile calls these too)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
console = Console()


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
) -> None:
    """The whole job on the embedded profile: generate a workload, ingest it, show the results."""
    from appconfig import get_settings
    from objectstore import store_from_settings
    from orchestration.runs import (
        build_analytics,
        ingest_partition_range,
        mart_summary,
        raw_table_summary,
    )
    from workload.config import WorkloadConfig
    from workload.generator import generate
    from workload.writer import write_workload

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
    console.print(
        f"done in {time.perf_counter() - started:.1f} s. See it in the Dagster UI: [bold]make ui[/]"
    )


if __name__ == "__main__":
    app()
