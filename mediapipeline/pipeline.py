"""Process uploaded originals into renditions and one metadata row each, in parallel.

Posts' originals (`media/originals/...`) get the square post renditions, stories' originals
(`media/stories/...`) the 9:16 story renditions; both are rows of the same table, a story's with
`story_id` set and `post_id` null.

Workers (a process pool) only read originals from the object store and write renditions to it,
under `media/renditions/<variant>/<rest of the original key>` (`.../<variant>/stories/...` for
stories); they return metadata rows to
the parent, which alone writes ClickHouse (`<database>.objects`), once per batch: embedded chDB
allows one process per data directory.

Idempotent: keys already in the table are skipped. An original that is not (yet) in the store
is counted as missing and not recorded, so it is picked up once it arrives; a corrupt or
unsupported one is recorded with its reason and never retried.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from clickhouse_connect.driver.client import Client

from mediapipeline.images import ImageResult, Layout, process_image
from mediapipeline.videos import VideoResult, process_video
from moderation.media import NSFW_THRESHOLD
from objectstore.store import ObjectStore

ORIGINALS_PREFIX = "media/originals/"
STORIES_PREFIX = "media/stories/"
RENDITIONS_PREFIX = "media/renditions/"
TABLE = "objects"
QUEUE_TABLE = "moderation_queue"  # media at or above the NSFW threshold, for human review
IMAGE_MIME_TYPES = {"image/jpeg", "image/png", "image/webp"}
VIDEO_MIME_TYPES = {"video/mp4", "video/quicktime", "video/webm"}
EXTENSION_MIME_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
}
COLUMNS = (
    "object_key",
    "post_id",
    "story_id",
    "user_id",
    "mime_type",
    "width",
    "height",
    "duration_ms",
    "bytes",
    "format",
    "orientation",
    "megapixels",
    "sharpness",
    "brightness",
    "blockiness",
    "nsfw_score",
    "face_count",
    "exif",
    "status",
    "reason",
    "rendition_keys",
    "processed_at",
)

StoreFactory = Callable[[], ObjectStore]


def objects_table_ddl(database: str) -> list[str]:
    """Statements creating `<database>.objects` (dbt's on-run-start hook runs the same ones)."""
    return [
        f"create database if not exists {database}",
        f"create table if not exists {database}.{TABLE} ("
        "object_key String, post_id Nullable(Int64), user_id Nullable(Int64), "
        "mime_type String, width Nullable(UInt32), height Nullable(UInt32), "
        "duration_ms Nullable(UInt32), bytes UInt64, format String, "
        "orientation UInt8, megapixels Nullable(Float64), sharpness Nullable(Float64), "
        "brightness Nullable(Float64), blockiness Nullable(Float64), exif String, "
        "status String, reason String, rendition_keys Map(String, String), "
        "processed_at DateTime64(3, 'UTC')"
        ") engine = ReplacingMergeTree(processed_at) order by object_key",
    ]


def objects_table_migrations(database: str) -> list[str]:
    """Columns added after the first version of the table (dbt's hook creates that version)."""
    return [
        f"alter table {database}.{TABLE} add column if not exists story_id Nullable(Int64) "
        "after post_id",
        *moderation_migrations(database),
    ]


def moderation_migrations(database: str) -> list[str]:
    """The content-check columns and the moderation queue (dbt's hook runs these too)."""
    return [
        f"alter table {database}.{TABLE} add column if not exists nsfw_score Nullable(Float64)",
        f"alter table {database}.{TABLE} add column if not exists face_count Nullable(UInt16)",
        f"create table if not exists {database}.{QUEUE_TABLE} ("
        "object_key String, post_id Nullable(Int64), story_id Nullable(Int64), "
        "user_id Nullable(Int64), nsfw_score Float64, face_count Nullable(UInt16), "
        "reason String, queued_at DateTime64(3, 'UTC')"
        ") engine = ReplacingMergeTree(queued_at) order by object_key",
    ]


def ensure_objects_table(client: Client, database: str) -> None:
    for statement in [*objects_table_ddl(database), *objects_table_migrations(database)]:
        client.command(statement)


@dataclass(frozen=True)
class MediaJob:
    """One original to process; post (or story) and user are known when it came from an event."""

    object_key: str
    mime_type: str = ""
    post_id: int | None = None
    user_id: int | None = None
    story_id: int | None = None

    @property
    def layout(self) -> Layout:
        is_story = self.story_id is not None or self.object_key.startswith(STORIES_PREFIX)
        return "story" if is_story else "post"

    @property
    def kind(self) -> str:
        mime = self.mime_type or EXTENSION_MIME_TYPES.get(
            PurePosixPath(self.object_key).suffix.lower(), ""
        )
        if mime in IMAGE_MIME_TYPES:
            return "image"
        if mime in VIDEO_MIME_TYPES:
            return "video"
        return "other"


@dataclass
class PipelineReport:
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped_existing: int = 0
    missing: int = 0
    seconds: float = 0.0
    workers: int = 1
    by_status: dict[str, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)
    by_layout: dict[str, int] = field(default_factory=dict)
    renditions: int = 0
    rendition_bytes: int = 0
    cpu_seconds: float = 0.0  # CPU of the processing itself (workers and their ffmpeg children)

    @property
    def processed(self) -> int:
        return len(self.rows)

    @property
    def objects_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds else 0.0


def rendition_key(original_key: str, variant: str, extension: str) -> str:
    """`media/originals/u/p/0.jpg` -> `media/renditions/<variant>/u/p/0<extension>`;
    `media/stories/u/s.jpg` -> `media/renditions/<variant>/stories/u/s<extension>`."""
    if original_key.startswith(STORIES_PREFIX):
        rest = "stories/" + original_key.removeprefix(STORIES_PREFIX)
    else:
        rest = original_key.removeprefix(ORIGINALS_PREFIX)
    return f"{RENDITIONS_PREFIX}{variant}/{PurePosixPath(rest).with_suffix(extension)}"


def process_object(store: ObjectStore, job: MediaJob) -> dict[str, Any] | None:
    """Read one original, write its renditions, return its metadata row (None: not in store).

    Runs in a worker; touches only the object store."""
    cpu_before = _cpu_seconds()
    try:
        data = store.get(job.object_key)
    except (FileNotFoundError, KeyError):
        return None
    except Exception as error:  # an S3 NoSuchKey is a ClientError
        if "NoSuchKey" in str(error) or "404" in str(error):
            return None
        raise
    kind = job.kind
    result: ImageResult | VideoResult
    if kind == "image":
        result = process_image(data, job.layout)
    elif kind == "video":
        result = process_video(data, PurePosixPath(job.object_key).suffix or ".mp4", job.layout)
    else:
        result = ImageResult(
            "unsupported", f"mime type {job.mime_type or 'unknown'!r}", bytes=len(data)
        )
    keys = {}
    for variant, rendition in result.renditions.items():
        key = rendition_key(
            job.object_key, variant, ".mp4" if rendition.format == "MP4" else ".jpg"
        )
        store.put(key, rendition.data)
        keys[variant] = key
    is_image = isinstance(result, ImageResult)
    return {
        "object_key": job.object_key,
        "post_id": job.post_id,
        "story_id": job.story_id,
        "user_id": job.user_id,
        "mime_type": job.mime_type,
        "width": result.width,
        "height": result.height,
        "duration_ms": None if is_image else result.duration_ms,  # type: ignore[union-attr]
        "bytes": result.bytes,
        "format": result.format,
        "orientation": result.orientation,
        "megapixels": result.megapixels,
        "sharpness": result.sharpness,
        "brightness": result.brightness,
        "blockiness": result.blockiness if is_image else None,  # type: ignore[union-attr]
        "nsfw_score": result.nsfw_score if is_image else None,  # type: ignore[union-attr]
        "face_count": result.face_count if is_image else None,  # type: ignore[union-attr]
        "exif": json.dumps(
            {**result.exif, "had_location": result.had_location}  # type: ignore[union-attr]
            if is_image
            else {"codec": result.codec, "orientation": result.orientation},  # type: ignore[union-attr]
            sort_keys=True,
        ),
        "status": result.status,
        "reason": result.reason,
        "rendition_keys": keys,
        "rendition_bytes": sum(len(r.data) for r in result.renditions.values()),
        "cpu_seconds": _cpu_seconds() - cpu_before,
        "processed_at": datetime.now(UTC),
    }


def _cpu_seconds() -> float:
    """CPU used so far by this process and the children it waited for (ffmpeg, ffprobe)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def processed_keys(client: Client, database: str, keys: Iterable[str]) -> set[str]:
    """Which of `keys` already have a row."""
    keys = list(keys)
    done: set[str] = set()
    for start in range(0, len(keys), 10_000):
        chunk = keys[start : start + 10_000]
        result = client.query(
            f"select object_key from {database}.{TABLE} where object_key in {{keys:Array(String)}}",
            parameters={"keys": chunk},
        )
        done.update(row[0] for row in result.result_rows)
    return done


def process_media(
    client: Client,
    database: str,
    store_factory: StoreFactory,
    jobs: Sequence[MediaJob],
    *,
    workers: int | None = None,
    batch_size: int = 500,
) -> PipelineReport:
    """Process the jobs not yet in `<database>.objects`; insert their rows in batches."""
    started = time.perf_counter()
    ensure_objects_table(client, database)
    unique = list({job.object_key: job for job in jobs}.values())
    done = processed_keys(client, database, [j.object_key for j in unique])
    todo = [j for j in unique if j.object_key not in done]
    report = PipelineReport(
        skipped_existing=len(unique) - len(todo), workers=max(1, workers or os.cpu_count() or 1)
    )
    batch: list[dict[str, Any]] = []
    for row in _run(store_factory, todo, report.workers):
        if row is None:
            report.missing += 1
            continue
        report.renditions += len(row["rendition_keys"])
        report.rendition_bytes += row.pop("rendition_bytes")
        report.cpu_seconds += row.pop("cpu_seconds")
        batch.append(row)
        if len(batch) >= batch_size:
            insert_rows(client, database, batch)
            report.rows += batch
            batch = []
    if batch:
        insert_rows(client, database, batch)
        report.rows += batch
    report.by_status = dict(Counter(r["status"] for r in report.rows))
    report.by_kind = dict(
        Counter(MediaJob(r["object_key"], r["mime_type"]).kind for r in report.rows)
    )
    report.by_layout = dict(
        Counter("story" if r["story_id"] is not None else "post" for r in report.rows)
    )
    report.seconds = time.perf_counter() - started
    return report


def insert_rows(
    client: Client,
    database: str,
    rows: list[dict[str, Any]],
    nsfw_threshold: float = NSFW_THRESHOLD,
) -> None:
    """Metadata rows, and a moderation-queue row for each one at or above the threshold."""
    client.insert(
        f"{database}.{TABLE}",
        [[row[c] for c in COLUMNS] for row in rows],
        column_names=list(COLUMNS),
    )
    flagged = [
        r for r in rows if r.get("nsfw_score") is not None and r["nsfw_score"] >= nsfw_threshold
    ]
    if flagged:
        client.insert(
            f"{database}.{QUEUE_TABLE}",
            [
                [
                    r["object_key"],
                    r["post_id"],
                    r["story_id"],
                    r["user_id"],
                    r["nsfw_score"],
                    r["face_count"],
                    f"nsfw_score {r['nsfw_score']:.2f} >= {nsfw_threshold}",
                    r["processed_at"],
                ]
                for r in flagged
            ],
            column_names=[
                "object_key",
                "post_id",
                "story_id",
                "user_id",
                "nsfw_score",
                "face_count",
                "reason",
                "queued_at",
            ],
        )


# --- workers ---------------------------------------------------------------------------------

_worker_store: ObjectStore | None = None


def _worker_init(store_factory: StoreFactory) -> None:
    global _worker_store
    _worker_store = store_factory()


def _worker_process(job: MediaJob) -> dict[str, Any] | None:
    assert _worker_store is not None
    return process_object(_worker_store, job)


def _run(
    store_factory: StoreFactory, jobs: list[MediaJob], workers: int
) -> Iterator[dict[str, Any] | None]:
    if workers < 2 or len(jobs) < 2:
        store = store_factory()
        for job in jobs:
            yield process_object(store, job)
        return
    with _pool(store_factory, workers) as pool:
        # unordered would be faster with mixed sizes, but map keeps memory bounded by chunks
        yield from pool.map(_worker_process, jobs, chunksize=4)


def _context() -> multiprocessing.context.BaseContext:
    """Forkserver: workers fork from a clean server process, never from this one (which may hold
    a chDB session and Dagster threads a fork would copy), and unlike spawn they do not each
    re-import the main module and the pipeline: the server imports them once. Under spawn that
    cost about 2 CPU-seconds per worker (the main module of a Dagster run imports Dagster), which
    made 2 workers slower than 1 on batches of a few hundred images."""
    context = multiprocessing.get_context("forkserver")
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    preload = ["__main__", __name__]
    if main_spec is not None and main_spec.name.endswith(".__main__"):
        # `python -m package` (how Dagster launches runs): children skip such a main module, so
        # importing it once in the server gives them its imports for free. Any other `-m module`
        # is re-run by name in each child, as under spawn.
        preload.append(main_spec.name)
    context.set_forkserver_preload(preload)
    return context


@contextmanager
def _pool(store_factory: StoreFactory, workers: int) -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(
        workers, mp_context=_context(), initializer=_worker_init, initargs=(store_factory,)
    ) as pool:
        yield pool
