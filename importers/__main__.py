"""`python -m importers movielens|edges ...`: real public data into the landing zone.

The events land in the hour the import runs (one ingestion partition); ingest that partition
(`photo-platform ingest --start P --end P`, the Dagster job `ingest_landing`) and build the
marts (`build_analytics`) as for any other data.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from appconfig import get_settings
from importers import movielens_source
from importers.edge_list import (
    DEFAULT_ID_OFFSET,
    DEFAULT_USERNAME_PREFIX,
    SYNTHETIC_START,
    EdgeListFormatError,
    import_edge_file,
)
from importers.landing import (
    DEFAULT_LINES_PER_FILE,
    ImportNotLanded,
    LandingWrite,
    import_folder,
    land_import,
    write_import_report,
    write_landing,
)
from importers.movielens import (
    SOURCE,
    MovieLensFormatError,
    import_movielens,
)
from importers.movielens_source import GROUPLENS_MD5, GROUPLENS_URL
from objectstore import open_store, store_from_settings
from objectstore.store import ObjectStore
from workload.generator import LandingRecord


class Kind(StrEnum):
    follows = "follows"
    blocks = "blocks"
    mutes = "mutes"


class NodeIds(StrEnum):
    integer = "integer"
    hex = "hex"
    auto = "auto"


app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()

StoreUrl = Annotated[
    str | None, typer.Option(help="file:///dir or s3://bucket (default: from settings)")
]
LandingPrefix = Annotated[str | None, typer.Option(help="landing prefix (default: from settings)")]
ReceivedAt = Annotated[
    str | None,
    typer.Option(help="when the platform receives the import, ISO-8601 (default: now)"),
]
BatchId = Annotated[
    str | None, typer.Option(help="names the landing files (default: source + received time)")
]
LinesPerFile = Annotated[int, typer.Option(min=1, help="lines per landing file")]


@app.callback()
def main() -> None:
    """Import real public datasets as platform events."""


def parse_received_at(value: str | None) -> datetime:
    """ISO-8601 (naive = UTC); default now, to the second so the batch id is readable."""
    if value is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO-8601 time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _store(store_url: str | None) -> ObjectStore:
    return open_store(store_url) if store_url else store_from_settings(get_settings())


def _landing_progress() -> Progress:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console)


def _write(
    store: ObjectStore, prefix: str, records: list[LandingRecord], batch: str, lines_per_file: int
) -> LandingWrite:
    with _landing_progress() as progress:
        task = progress.add_task("landing files", total=len(records))
        return write_landing(
            store,
            prefix,
            records,
            batch,
            lines_per_file=lines_per_file,
            on_file=lambda lines: progress.advance(task, lines),
        )


def _land(
    store: ObjectStore, prefix: str, records: list[LandingRecord], batch: str, **options: Any
) -> tuple[LandingWrite, str, str | None]:
    with _landing_progress() as progress:
        task = progress.add_task("landing files", total=len(records))
        return land_import(
            store,
            prefix,
            records,
            batch,
            on_file=lambda lines: progress.advance(task, lines),
            **options,
        )


def _summary(title: str, rows: dict[str, Any], written: LandingWrite, store: ObjectStore) -> None:
    table = Table(title=title)
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, value in rows.items():
        table.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    table.add_row("landing files", f"{len(written.keys):,}")
    table.add_row("MB written", f"{written.bytes / 1e6:,.1f}")
    console.print(table)
    first, last = min(written.partitions), max(written.partitions)
    console.print(
        f"-> {store.url}; ingest with: photo-platform ingest --start {first} --end {last}"
    )


@app.command("movielens")
def movielens_command(
    path: Annotated[
        Path | None,
        typer.Option(
            "--from",
            "--path",
            help="a folder or zip, RecBole (ml-100k.user/.item/.inter) or GroupLens (u.user, "
            "u.item, u.data) layout (default: MOVIELENS_DIR, else ../shared/datasets)",
        ),
    ] = None,
    download: Annotated[
        bool, typer.Option("--download", help="fetch GroupLens' ml-100k.zip, check its MD5")
    ] = False,
    url: Annotated[str, typer.Option(help="where --download fetches from")] = GROUPLENS_URL,
    md5: Annotated[str, typer.Option(help="the MD5 the download must have")] = GROUPLENS_MD5,
    users: Annotated[
        int | None, typer.Option(min=1, help="import only the N users with the smallest ids")
    ] = None,
    follows: Annotated[bool, typer.Option(help="follow a genre account on the first like")] = True,
    received_at: ReceivedAt = None,
    batch_id: BatchId = None,
    store_url: StoreUrl = None,
    landing_prefix: LandingPrefix = None,
    lines_per_file: LinesPerFile = DEFAULT_LINES_PER_FILE,
) -> None:
    """MovieLens 100K: users, one post per movie, an impression per rating, a like per >= 4."""
    at = parse_received_at(received_at)
    cache = get_settings().data_dir / "datasets"
    try:
        if download:
            if path is not None:
                raise typer.BadParameter("--from and --download exclude each other")
            console.print(f"downloading {url} ...")
            path = movielens_source.download(cache, url, md5)
            console.print(f"MD5 {md5} verified: {path}")
        directory = movielens_source.resolve(path, cache)
    except movielens_source.MovieLensSourceError as error:
        raise typer.BadParameter(str(error)) from None
    try:
        imported = import_movielens(
            directory,
            received_at=at,
            max_users=users,
            follows=follows,
            progress=True,
        )
    except MovieLensFormatError as error:
        raise typer.BadParameter(str(error)) from None
    batch = batch_id or f"{SOURCE}-{at:%Y%m%dT%H%M%SZ}"
    store = _store(store_url)
    prefix = landing_prefix or get_settings().landing_prefix
    written = _write(store, prefix, imported.log.records, batch, lines_per_file)
    manifest = {**imported.manifest(), "batch_id": batch, "landing_keys": written.keys}
    manifest_key, _ = write_import_report(store, SOURCE, batch, manifest)
    rows: dict[str, Any] = {
        "source users / items / ratings": " / ".join(
            f"{n:,}" for n in imported.source_counts.values()
        ),
        "imported users / ratings": f"{imported.imported_users:,} / {imported.imported_ratings:,}",
        "genre accounts": len(imported.genre_accounts),
        **{f"event {k}": v for k, v in sorted(imported.log.counts.items())},
        "manifest": manifest_key,
    }
    _summary(f"MovieLens import {batch}", rows, written, store)


@app.command("edges")
def edges_command(
    path: Annotated[
        Path, typer.Argument(help="edge list: follower, followee[, timestamp][, relation]")
    ],
    kind: Annotated[
        Kind | None,
        typer.Option(help="what every edge is (default follows; or a relation column per line)"),
    ] = None,
    node_ids: Annotated[
        NodeIds, typer.Option(help="integer node ids, hex keys (mapped to integers) or auto")
    ] = NodeIds.auto,
    signups: Annotated[
        bool | None,
        typer.Option(
            "--signups/--no-signups",
            help="a sign-up per node (default: yes, except for a blocks or mutes file)",
        ),
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="dataset name; seeds the event ids (default: edges:<stem>)")
    ] = None,
    id_offset: Annotated[
        int, typer.Option(min=0, help="platform user id = offset + node")
    ] = DEFAULT_ID_OFFSET,
    username_prefix: Annotated[
        str, typer.Option(help="username = prefix + node")
    ] = DEFAULT_USERNAME_PREFIX,
    synthetic_start: Annotated[
        str, typer.Option(help="timestamp of line 1 when a line has none")
    ] = SYNTHETIC_START.isoformat(),
    synthetic_step_seconds: Annotated[
        float, typer.Option(min=0.001, help="seconds between synthesized timestamps of lines")
    ] = 1.0,
    received_at: ReceivedAt = None,
    batch_id: BatchId = None,
    store_url: StoreUrl = None,
    landing_prefix: LandingPrefix = None,
    lines_per_file: LinesPerFile = DEFAULT_LINES_PER_FILE,
) -> None:
    """A graph edge list: a sign-up per node, a follow, block or mute per edge, rejects with
    reasons. Nothing lands unless all of it does."""
    if not path.is_file():
        raise typer.BadParameter(f"{path}: file not found")
    at = parse_received_at(received_at)
    try:
        imported = import_edge_file(
            path,
            **({"source": source} if source else {}),
            received_at=at,
            id_offset=id_offset,
            username_prefix=username_prefix,
            synthetic_start=parse_received_at(synthetic_start),
            synthetic_step=timedelta(seconds=synthetic_step_seconds),
            kind=kind.value if kind else None,
            node_ids=node_ids.value,
            signups=signups,
            progress=True,
        )
    except EdgeListFormatError as error:
        raise typer.BadParameter(f"{path}: {error}") from None
    name = imported.source.replace(":", "-")
    batch = batch_id or f"{name}-{at:%Y%m%dT%H%M%SZ}"
    store = _store(store_url)
    prefix = landing_prefix or get_settings().landing_prefix
    extra = {"node_ids.csv": imported.node_id_csv()} if imported.node_ids else {}
    try:
        written, manifest_key, rejects_key = _land(
            store,
            prefix,
            imported.log.records,
            batch,
            source=name,
            manifest=imported.manifest(),
            rejects=[r.as_dict() for r in imported.rejects],
            extra_files=extra,
            lines_per_file=lines_per_file,
        )
    except ImportNotLanded as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(1) from None
    rows: dict[str, Any] = {
        "nodes": imported.nodes,
        **{f"edges ({k})": v for k, v in imported.by_relation().items()},
        "sign-ups": imported.log.counts.get("user_created", 0),
        "node ids": imported.node_id_kind,
        "synthesized timestamps": imported.synthesized_timestamps,
        "rejected lines": len(imported.rejects),
        **{f"rejected: {k}": v for k, v in imported.manifest()["rejects_by_reason"].items()},
        "manifest": manifest_key,
        "rejects": rejects_key or "-",
    }
    if extra:
        rows["node id mapping"] = f"{import_folder(name, batch)}/node_ids.csv"
    _summary(f"edge list import {batch}", rows, written, store)
    for reject in imported.rejects[:10]:
        console.print(f"[yellow]line {reject.line}[/]: {reject.reason}  [dim]{reject.text!r}[/]")
    if len(imported.rejects) > 10:
        console.print(f"... {len(imported.rejects) - 10:,} more in {rejects_key}")


if __name__ == "__main__":
    app()
