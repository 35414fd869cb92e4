"""`photo-platform`: every job people run, one command each (the Makefile calls these too).

Libraries' own output (Spark, TensorFlow, MLflow, Feast, dbt, Dagster) goes to
`<data dir>/logs/platform.log`; the console shows the platform's progress and tables.
`-v` shows everything on the console instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from importers.__main__ import app as importers_app
from workload.__main__ import generate_command

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from appconfig import Settings

REPO_ROOT = Path(__file__).resolve().parent
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help=__doc__,
    context_settings={"help_option_names": ["-h", "--help"]},
)
build_app = typer.Typer(
    help="Every stage (no argument) or one stage of the pipeline, as Dagster jobs."
)
services_app = typer.Typer(
    no_args_is_help=True,
    help="Kafka, MinIO, Redis, PostgreSQL, Cassandra and OpenSearch on loopback (scripts/services/all.sh).",
)
app.add_typer(build_app, name="build")
app.add_typer(importers_app, name="import", help="Real public data into the landing zone.")
app.add_typer(services_app, name="services")
app.command("generate", help="A seeded synthetic workload into the landing zone.")(generate_command)
console = Console()
_verbose = False


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="libraries' logs on the console too")
    ] = False,
) -> None:
    """Global options."""
    global _verbose
    _verbose = verbose


@contextmanager
def quiet(settings: Settings | None = None) -> Iterator[None]:
    """Libraries' output into the log file (unless -v); the path is printed at the end."""
    from appconfig import get_settings
    from appconfig.library_logs import library_output_to, log_path

    if _verbose:
        yield
        return
    from appconfig.library_logs import console_stdout
    from importers.__main__ import console as importers_console

    path = log_path((settings or get_settings()).data_dir)
    consoles = (console, importers_console)
    try:
        with library_output_to(path):
            for each in consoles:  # the platform's own output stays on the terminal
                each.file = console_stdout()
            try:
                yield
            finally:
                for each in consoles:
                    each.file = None  # type: ignore[assignment]  # back to sys.stdout
    finally:
        console.print(f"[dim]libraries' logs: {path} (-v shows them here)[/]")


@build_app.callback(invoke_without_command=True)
def build(
    ctx: typer.Context,
    start: str | None = typer.Option(None, help="ingest landing partitions from this one first"),
    end: str | None = typer.Option(None, help="last partition to ingest (default: start)"),
) -> None:
    """Without a stage: ingest (optional), then marts, features, models and home feeds (Dagster
    jobs). A stage whose data is missing (no impressions, no posts) is skipped with the reason."""
    if ctx.invoked_subcommand is not None:
        return
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

    with quiet():
        ok = ingest_partition_range(start, end)
    raise typer.Exit(0 if ok else 1)


BUILD_JOBS = {
    "analytics": ("build_analytics", "dbt build: staging, intermediate, marts, their tests"),
    "features": ("build_features", "feast apply, online store, point-in-time training set"),
    "models": ("train_models", "train, evaluate, register and promote every model (MLflow)"),
    "feeds": ("build_feeds", "every user's candidate home feed (push fan-out)"),
}


def _build_command(stage: str, job: str, what: str) -> None:
    def command() -> None:
        from orchestration.runs import run_job

        console.print(f"{what} (Dagster job {job}) ...")
        with quiet():
            ok = run_job(job)
        if not ok:
            console.print(f"[red]job {job} failed: see the run in the Dagster UI (make ui)[/]")
            raise typer.Exit(1)
        console.print(f"[green]{job} succeeded[/]")

    command.__doc__ = f"{what.capitalize()} (job {job})."
    build_app.command(stage)(command)


for _stage, (_job, _what) in BUILD_JOBS.items():
    _build_command(_stage, _job, _what)


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

    settings = get_settings()
    with quiet(settings):
        example_user = _demo(settings, users, days, seed, bad_fraction)
    if not serve:
        return
    console.rule("[bold]the API[/] (Ctrl-C stops it)")
    console.print(f"a user with history to try: [bold]{example_user}[/]")
    from serving.__main__ import main as serve_api

    serve_api()


def _demo(settings: Settings, users: int, days: int, seed: int, bad_fraction: float) -> int:
    """Generate, ingest and build everything; the user to try the API with."""
    from objectstore import store_from_settings
    from orchestration.runs import (
        build_analytics,
        ingest_partition_range,
        mart_summary,
        raw_table_summary,
        run_job_outcome,
    )
    from workload.config import WorkloadConfig
    from workload.generator import generate
    from workload.writer import write_workload

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
        ("build_search", "search: tantivy indexes of posts, users, hashtags and locations"),
    ):
        console.print(f"{what} ...")
        outcome = run_job_outcome(job)
        for asset, reason in outcome.skipped.items():
            console.print(f"  [yellow]skipped[/] {asset}: {reason}")
        if not outcome.success:
            console.print(f"[red]job {job} failed: see the run in the Dagster UI (make ui)[/]")
            raise typer.Exit(1)
    _print_models(settings)
    example_user = _active_user(settings)
    console.print(
        f"done in {time.perf_counter() - started:.1f} s. Dagster UI: [bold]make ui[/]; "
        "notebooks: notebooks/"
    )
    return example_user


def _active_user(settings: Settings) -> int:
    """The viewer with the most impressions: a user whose feed shows the ranking at work."""
    from warehouse import clickhouse_client

    marts = settings.marts_database
    with clickhouse_client(settings.clickhouse_url) as client:
        rows = client.query(
            f"SELECT viewer_id FROM {marts}.fct_training_impressions "
            "GROUP BY viewer_id ORDER BY count() DESC LIMIT 1"
        ).result_rows
    return int(rows[0][0]) if rows else 0


def _print_models(settings: Settings) -> None:
    """What serves each model and why: the champion, or the baseline when no version beat it,
    with the newest version's promotion decision (its figure beside the baseline's)."""
    from mlflow import MlflowClient

    from ml.tracking import tracking_uri

    client = MlflowClient(tracking_uri(settings))
    table = Table(title="models in the MLflow registry: what serves, and the newest decision")
    for column in ("model", "champion", "serving", "newest version: holdout figure vs baseline"):
        table.add_column(column)
    for name in ("feed-ranker", "who-to-follow", "explore"):
        table.add_row(name, *_model_row(client, name))
    console.print(table)


def _model_row(client: MlflowClient, name: str) -> tuple[str, str, str]:
    """(champion version, what serves, the newest version's figure beside its baseline)."""
    versions = list(client.search_model_versions(f"name='{name}'"))
    if not versions:
        return "-", "nothing registered (training skipped: see above)", ""
    newest = max(versions, key=lambda version: int(version.version))
    tags = dict(newest.tags or {})
    try:
        champion = str(client.get_model_version_by_alias(name, "champion").version)
    except Exception:  # no champion alias: the baseline serves
        champion = "-"
    baseline = tags.get("promotion.baseline", "") or "baseline"
    serving = f"v{champion}" if champion != "-" else f"{baseline} (baseline)"
    metric = tags.get("promotion.metric", "")
    figures = client.get_run(newest.run_id).data.metrics if newest.run_id and metric else {}
    candidate = figures.get(f"promotion_candidate_{metric}")
    against = figures.get(f"promotion_baseline_{metric}")
    text = f"v{newest.version}"
    if candidate is not None:
        text += f" {metric} {candidate:.3f}"
    if against is not None:
        text += f" vs {baseline} {against:.3f}"
    promoted = tags.get("promotion.promoted")
    if promoted is not None:
        text += ": promoted" if promoted == "true" else ": not promoted"
    return champion, serving, text


@app.command()
def serve() -> None:
    """The API (FastAPI on uvicorn) on the current profile's data."""
    from serving.__main__ import main as serve_api

    serve_api()


@app.command()
def ui(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(3000),
) -> None:
    """The Dagster UI (webserver + daemon); SIGTERM or Ctrl-C stops every process it started."""
    from orchestration.ui import run

    raise typer.Exit(run(host, port))


@app.command("mlflow-ui")
def mlflow_ui(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(5000),
) -> None:
    """The MLflow UI over the current profile's tracking store and model registry."""
    from uis import mlflow_ui as start

    raise typer.Exit(start(host, port))


@app.command("dbt-docs")
def dbt_docs(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8080),
) -> None:
    """Generate the dbt docs of transformations/ (models, columns, lineage) and serve them."""
    from uis import dbt_docs as start

    raise typer.Exit(start(host, port))


@app.command("feast-ui")
def feast_ui(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8888),
) -> None:
    """The Feast UI over the current profile's registry (feature views, services, entities)."""
    from uis import feast_ui as start

    raise typer.Exit(start(host, port))


def _services(action: str) -> None:
    script = REPO_ROOT / "scripts" / "services" / "all.sh"
    raise typer.Exit(subprocess.call(["bash", str(script), action]))


@services_app.command("up")
def services_up() -> None:
    """Install (once) and start the services; a no-op for the ones already running."""
    _services("up")


@services_app.command("down")
def services_down() -> None:
    """Stop the services."""
    _services("down")


@services_app.command("status")
def services_status() -> None:
    """One line per service; exit status 0 only when all are up."""
    _services("status")


# The embedded benchmarks (figures go to docs/benchmarks.md by hand), with their usual arguments.
BENCHMARKS: dict[str, list[str]] = {
    "ingest": [],
    "generator": [],
    "dbt_build": ["--events", "1000000"],
    "media_renditions": [],
    "ranker_training": [],
    "als": [],
}
SERVICES_BENCHMARKS = ("kafka_ingest", "online_features", "fanout", "serving_feed")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help=f"which: {', '.join([*BENCHMARKS, *SERVICES_BENCHMARKS])} (default: the "
            "embedded ones); arguments after -- go to each"
        ),
    ] = None,
) -> None:
    """Benchmarks, each printed beside its same-run baseline (`python -m bench.<name>`)."""
    known = {*BENCHMARKS, *SERVICES_BENCHMARKS}
    chosen = names or list(BENCHMARKS)
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise typer.BadParameter(f"unknown benchmark(s) {unknown}; known: {sorted(known)}")
    for name in chosen:
        args = ctx.args or BENCHMARKS.get(name, [])
        console.rule(f"bench.{name} {' '.join(args)}")
        code = subprocess.call([sys.executable, "-m", f"bench.{name}", *args], cwd=REPO_ROOT)
        if code:
            raise typer.Exit(code)
    if not names:
        console.print(
            f"services benchmarks (make services-up first): {', '.join(SERVICES_BENCHMARKS)}"
        )


if __name__ == "__main__":
    os.environ["PYTHONUNBUFFERED"] = "1"
    app()
