"""`python -m workload generate ...`: generate a seeded workload into the landing zone."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from appconfig import get_settings
from objectstore import open_store, store_from_settings
from workload.config import WorkloadConfig
from workload.generator import generate
from workload.writer import write_workload

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@app.callback()
def main() -> None:
    """Synthetic app events driven by a hidden ground truth."""


def parse_start(value: str | None) -> datetime | None:
    """`2026-11-20` or an ISO-8601 datetime; naive values are taken as UTC."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@app.command("generate")
def generate_command(
    users: Annotated[int, typer.Option(help="number of accounts")] = 1000,
    days: Annotated[int, typer.Option(help="length of the window in days")] = 3,
    seed: Annotated[int, typer.Option(help="the seed: same seed, same bytes")] = 7,
    bad_fraction: Annotated[float, typer.Option(help="share of bad records")] = 0.02,
    start: Annotated[
        str | None, typer.Option(help="window start, e.g. 2026-11-20 (default: today - days)")
    ] = None,
    store_url: Annotated[
        str | None, typer.Option(help="file:///dir or s3://bucket (default: from settings)")
    ] = None,
    landing_prefix: Annotated[
        str | None, typer.Option(help="landing prefix (default: from settings)")
    ] = None,
    batch_id: Annotated[str | None, typer.Option(help="file name part (default: run id)")] = None,
    progress: Annotated[bool, typer.Option(help="show progress")] = True,
    media: Annotated[
        bool, typer.Option(help="also write real image objects at the events' media keys")
    ] = False,
    media_limit: Annotated[
        int | None, typer.Option(help="with --media: write only the first N images")
    ] = None,
    kafka: Annotated[
        bool,
        typer.Option(help="also publish every record to Kafka (KAFKA_BOOTSTRAP_SERVERS)"),
    ] = False,
) -> None:
    """Generate a workload and write it (records, ground truth, manifest) to the object store."""
    console = Console()
    config = WorkloadConfig(
        users=users, days=days, seed=seed, bad_fraction=bad_fraction, start=parse_start(start)
    )
    settings = get_settings()
    store = open_store(store_url) if store_url else store_from_settings(settings)
    prefix = landing_prefix or settings.landing_prefix

    workload = generate(config, progress=progress)
    written = time.perf_counter()
    result = write_workload(store, prefix, workload, batch_id)
    write_seconds = time.perf_counter() - written

    manifest = workload.manifest
    table = Table(title=f"workload {workload.run_id}", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    for family, count in manifest["valid_by_family"].items():
        table.add_row(f"valid {family}", f"{count:,}")
    table.add_row("[bold]valid events[/]", f"[bold]{manifest['valid_events']:,}[/]")
    for kind, count in manifest["bad_by_kind"].items():
        table.add_row(f"bad {kind}", f"{count:,}")
    table.add_row("[bold]bad records[/]", f"[bold]{manifest['bad_events']:,}[/]")
    table.add_row("hourly partitions", f"{len(result.partitions):,}")
    table.add_row("landing files", f"{len(result.keys):,}")
    table.add_row("MB written", f"{result.bytes / 1e6:,.1f}")
    table.add_row("generate s", f"{workload.elapsed_seconds:.2f}")
    table.add_row("events/s (generate)", f"{workload.events_per_second:,.0f}")
    table.add_row("write s", f"{write_seconds:.2f}")
    console.print(table)
    console.print(
        f"window {config.window_start:%Y-%m-%d %H:%M} .. {config.window_end:%Y-%m-%d %H:%M} UTC"
        f" -> {store.url}/{prefix}; manifest {result.manifest_key}"
    )
    if kafka:
        from workload.kafka_publisher import ensure_topics, publish

        if not settings.kafka_bootstrap_servers:
            raise typer.BadParameter("--kafka needs KAFKA_BOOTSTRAP_SERVERS (make services-up)")
        ensure_topics(settings.kafka_bootstrap_servers)
        sent = publish(workload.records, settings.kafka_bootstrap_servers)
        console.print(
            f"kafka: {sent.messages:,} messages to {len(sent.by_topic)} topics"
            f" in {sent.seconds:.1f} s ({sent.messages_per_second:,.0f}/s)"
        )
    if media:
        from workload.media import write_media

        report = write_media(store, workload, limit=media_limit, seed=seed, progress=progress)
        variants = ", ".join(f"{v} {n:,}" for v, n in sorted(report.by_variant.items()))
        console.print(
            f"media: {report.images:,} images ({variants}), {report.bytes / 1e6:,.1f} MB"
            f" in {report.seconds:.1f} s ({report.images_per_second:,.0f}/s);"
            f" skipped {report.skipped_videos:,} videos, {report.skipped_by_limit:,} over the"
            f" limit; table {report.table_key}"
        )


if __name__ == "__main__":
    app()
