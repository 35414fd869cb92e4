"""Real image objects behind the media items of `post_created` and `story_created` events.

The events reference object keys; a media pipeline needs the objects to exist. Each image is
drawn with Pillow at exactly the declared width x height (a seeded gradient, shapes and noise:
cheap, but not flat) and written at its key. A seeded few get a known defect so later checks
can tell whether a pipeline notices it: `blurred`, `rotated` (EXIF Orientation 6, pixels stored
unrotated), `corrupt` (truncated or garbage bytes under a .jpg key), and `tiny` when the event
declares at most TINY_MAX_SIDE px on both sides. Pixels and variant depend only on the seed and
the object key, so the same seed gives the same bytes. Videos are skipped (no encoder yet) and
counted. What was written goes to `ground_truth/<run_id>/media_objects.parquet`.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
from PIL import Image, ImageChops, ImageDraw, ImageFilter
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from objectstore.store import ObjectStore
from workload.generator import Workload
from workload.writer import ground_truth_key

Variant = Literal["normal", "blurred", "tiny", "rotated", "corrupt"]
VARIANTS: tuple[Variant, ...] = ("normal", "blurred", "tiny", "rotated", "corrupt")
MEDIA_EVENT_TYPES = ("post_created", "story_created")
IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
# Share of images (other than tiny ones) given each defect; the rest stay normal.
VARIANT_RATES: dict[Variant, float] = {"blurred": 0.04, "rotated": 0.03, "corrupt": 0.02}
TINY_MAX_SIDE = 200
JPEG_QUALITY = 85
WEBP_QUALITY = 80
ORIENTATION_TAG = 0x0112
MAX_COLOUR = 239  # + grain 0..15 stays <= 255
PILLOW_BLOCKS = 16  # freed image blocks Pillow keeps for reuse while writing
ROTATED_ORIENTATION = 6  # "rotate 90 degrees clockwise to display"
TABLE_NAME = "media_objects"
TABLE_COLUMNS = (
    "object_key",
    "event_type",
    "event_id",
    "mime_type",
    "width",
    "height",
    "variant",
    "detail",
    "orientation",
    "bytes",
    "declared_bytes",
    "sha256",
)
INT_COLUMNS = ("width", "height", "orientation", "bytes", "declared_bytes")
Rendered = tuple[bytes, str, float, float]  # data, detail, render seconds, encode seconds


@dataclass(frozen=True)
class MediaItem:
    """One media object as an event declares it (the first event naming its key)."""

    object_key: str
    mime_type: str
    width: int
    height: int
    declared_bytes: int
    event_type: str
    event_id: str

    @property
    def is_image(self) -> bool:
        return self.mime_type in IMAGE_FORMATS


@dataclass
class MediaReport:
    """What `write_media` did; `table` has one row per object written (TABLE_COLUMNS)."""

    table: pd.DataFrame
    table_key: str
    images: int = 0
    bytes: int = 0
    skipped_videos: int = 0
    skipped_unsupported: int = 0
    skipped_by_limit: int = 0
    seconds: float = 0.0
    render_seconds: float = 0.0  # drawing, noise, blur (summed over workers)
    encode_seconds: float = 0.0  # Pillow's encoder (summed over workers)
    workers: int = 1
    by_variant: dict[str, int] = field(default_factory=dict)

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    @property
    def encode_share(self) -> float:
        """Share of the CPU time spent making images that went into encoding."""
        busy = self.render_seconds + self.encode_seconds
        return self.encode_seconds / busy if busy else 0.0


def media_items(workload: Workload) -> list[MediaItem]:
    """Every media item of the valid post/story events, in produced order, once per key."""
    items: dict[str, MediaItem] = {}
    for record in workload.records:
        if record.is_bad or record.event_type not in MEDIA_EVENT_TYPES:
            continue
        event = orjson.loads(record.line)
        media = event["media"]
        for m in media if isinstance(media, list) else [media]:
            key = m["object_key"]
            if key not in items:
                items[key] = MediaItem(
                    key,
                    m["mime_type"],
                    int(m["width"]),
                    int(m["height"]),
                    int(m.get("size_bytes", 0)),
                    record.event_type,
                    event["event_id"],
                )
    return list(items.values())


def variant_of(item: MediaItem, seed: int = 0) -> Variant:
    """The seeded variant of an image: depends only on the seed and the key (not on order)."""
    if max(item.width, item.height) <= TINY_MAX_SIDE:
        return "tiny"
    u = float(_rng(seed, item.object_key, "variant").random())
    for variant, rate in VARIANT_RATES.items():
        if u < rate:
            if variant == "corrupt" and not _is_jpeg_key(item):
                return "normal"
            return variant
        u -= rate
    return "normal"


def render_image(
    object_key: str,
    mime_type: str,
    width: int,
    height: int,
    variant: Variant = "normal",
    seed: int = 0,
) -> bytes:
    """The bytes of one image object; the same arguments always give the same bytes."""
    return _render(object_key, mime_type, width, height, variant, seed)[0]


def write_media(
    store: ObjectStore,
    workload: Workload,
    *,
    limit: int | None = None,
    seed: int = 0,
    progress: bool = False,
    workers: int | None = None,
) -> MediaReport:
    """Write the image objects of `workload`'s events (the first `limit` in event order)."""
    return write_media_items(
        store,
        media_items(workload),
        workload.run_id,
        limit=limit,
        seed=seed,
        progress=progress,
        workers=workers,
    )


def write_media_items(
    store: ObjectStore,
    items: Iterable[MediaItem],
    run_id: str,
    *,
    limit: int | None = None,
    seed: int = 0,
    progress: bool = False,
    workers: int | None = None,
) -> MediaReport:
    """Render and put each image item, then the table of what was written.

    Rendering runs in `workers` processes (default: the CPU count; 1 = in this process); puts
    stay in this process, in event order, so any store works.
    """
    started = time.perf_counter()
    items = list(items)
    images = [i for i in items if i.is_image]
    todo = images if limit is None else images[: max(limit, 0)]
    report = MediaReport(
        table=pd.DataFrame(columns=list(TABLE_COLUMNS)),
        table_key=ground_truth_key(run_id, TABLE_NAME),
        skipped_videos=sum(i.mime_type.startswith("video/") for i in items),
        skipped_by_limit=len(images) - len(todo),
        workers=max(1, workers or os.cpu_count() or 1),
    )
    report.skipped_unsupported = len(items) - len(images) - report.skipped_videos
    rows: list[dict[str, Any]] = []
    with (
        _block_cache(PILLOW_BLOCKS),
        _pool(report.workers, len(todo)) as pool,
        _bar(progress, len(todo)) as advance,
    ):
        for item, variant, (data, detail, render_s, encode_s) in _rendered(
            pool, todo, seed, 4 * report.workers
        ):
            store.put(item.object_key, data)
            rows.append(
                {
                    "object_key": item.object_key,
                    "event_type": item.event_type,
                    "event_id": item.event_id,
                    "mime_type": item.mime_type,
                    "width": item.width,
                    "height": item.height,
                    "variant": variant,
                    "detail": detail,
                    "orientation": ROTATED_ORIENTATION if variant == "rotated" else 1,
                    "bytes": len(data),
                    "declared_bytes": item.declared_bytes,
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
            )
            report.render_seconds += render_s
            report.encode_seconds += encode_s
            advance()
    if rows:
        report.table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    report.table = report.table.astype(dict.fromkeys(INT_COLUMNS, "int64"))
    buffer = io.BytesIO()
    report.table.to_parquet(buffer, index=False, engine="pyarrow")
    store.put(report.table_key, buffer.getvalue())
    report.images = len(rows)
    report.bytes = int(report.table["bytes"].sum())
    report.by_variant = {v: int(n) for v, n in Counter(report.table["variant"]).items()}
    report.seconds = time.perf_counter() - started
    return report


def _rendered(
    pool: ProcessPoolExecutor | None, items: list[MediaItem], seed: int, window: int
) -> Iterator[tuple[MediaItem, Variant, Rendered]]:
    """(item, variant, rendering) in the order of `items`, a bounded window in flight."""
    jobs = [
        (i.object_key, i.mime_type, i.width, i.height, variant_of(i, seed), seed) for i in items
    ]
    if pool is None:
        for item, job in zip(items, jobs, strict=True):
            yield item, job[4], _render(*job)
        return
    pending: deque[Future[Rendered]] = deque()
    ahead = iter(jobs)
    for item, job in zip(items, jobs, strict=True):
        while len(pending) < window:
            next_job = next(ahead, None)
            if next_job is None:
                break
            pending.append(pool.submit(_render, *next_job))
        yield item, job[4], pending.popleft().result()


@contextmanager
def _pool(workers: int, jobs: int) -> Iterator[ProcessPoolExecutor | None]:
    """Worker processes (forked: no re-import) when there are enough jobs to share, else None.

    Threads helped less (1.3x on 2 cores against 1.7x): drawing the shapes, the grain and the
    merge hold the GIL.
    """
    if workers < 2 or jobs < 2 * workers:
        yield None
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init) as pool:
        pool.submit(int).result()  # start the workers now, before a progress thread exists
        yield pool


def _worker_init() -> None:
    Image.core.set_blocks_max(max(Image.core.get_blocks_max(), PILLOW_BLOCKS))


def _render(
    key: str, mime_type: str, width: int, height: int, variant: Variant, seed: int
) -> Rendered:
    t0 = time.perf_counter()
    image = _draw(_rng(seed, key, "pixels"), width, height)
    detail = ""
    if variant == "blurred":
        radius = max(1.5, min(width, height) / 180)
        image = image.filter(ImageFilter.GaussianBlur(radius))
        detail = f"gaussian blur radius {radius:.1f}"
    t1 = time.perf_counter()
    data = _encode(image, IMAGE_FORMATS[mime_type], rotated=variant == "rotated")
    t2 = time.perf_counter()
    if variant == "rotated":
        detail = f"EXIF orientation {ROTATED_ORIENTATION}, pixels unrotated"
    elif variant == "corrupt":
        data, detail = _corrupt(_rng(seed, key, "corrupt"), data)
    return data, detail, t1 - t0, t2 - t1


def _draw(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A smooth gradient with soft blobs, sharp shapes on top, grain over all.

    Colours stay below 240 so the grain (+0..15) can be added modulo 256 without wrapping,
    which is 4x cheaper than a saturating add; the smooth layer is drawn at 1/16 scale, resized
    bilinearly to half size and doubled (nearest), which costs a third of one full-size resize.
    """
    sw, sh = max(2, width // 16), max(2, height // 16)
    y, x = np.mgrid[0:sh, 0:sw].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    t = x / sw * np.cos(angle) + y / sh * np.sin(angle)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    c0, c1 = rng.uniform(0, MAX_COLOUR, 3), rng.uniform(0, MAX_COLOUR, 3)
    base = c0 + t[..., None] * (c1 - c0)
    for _ in range(3):
        cx, cy = rng.uniform(0, sw), rng.uniform(0, sh)
        r = rng.uniform(1, max(sw, sh) / 2)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
        base += blob[..., None] * rng.uniform(-80, 80, 3)
    small = Image.fromarray(base.clip(0, MAX_COLOUR).astype(np.uint8), "RGB")
    half = small.resize((max(1, width // 2), max(1, height // 2)), Image.Resampling.BILINEAR)
    image = half.resize((width, height), Image.Resampling.NEAREST)

    draw = ImageDraw.Draw(image)
    side = min(width, height)
    for _ in range(int(rng.integers(8, 16))):
        x0, y0 = rng.uniform(-0.1, 1.0) * width, rng.uniform(-0.1, 1.0) * height
        size = rng.uniform(0.03, 0.3) * side
        box = (x0, y0, x0 + size * rng.uniform(0.5, 2), y0 + size * rng.uniform(0.5, 2))
        fill = tuple(int(c) for c in rng.integers(0, MAX_COLOUR + 1, 3))
        shape = int(rng.integers(3))
        if shape == 0:
            draw.ellipse(box, fill=fill)
        elif shape == 1:
            draw.rectangle(box, fill=fill)
        else:
            draw.line(box, fill=fill, width=max(1, int(rng.uniform(0.002, 0.01) * side)))

    grain = np.frombuffer(rng.bytes(width * height), np.uint8).reshape(height, width) >> 4
    noise = Image.fromarray(np.ascontiguousarray(grain), "L")
    return ImageChops.add_modulo(image, Image.merge("RGB", (noise, noise, noise)))


def _encode(image: Image.Image, fmt: str, *, rotated: bool) -> bytes:
    options: dict[str, Any] = {}
    if fmt == "JPEG":
        options = {"quality": JPEG_QUALITY}
    elif fmt == "WEBP":
        options = {"quality": WEBP_QUALITY, "method": 0}
    elif fmt == "PNG":
        options = {"compress_level": 1}
    if rotated:
        exif = Image.Exif()
        exif[ORIENTATION_TAG] = ROTATED_ORIENTATION
        options["exif"] = exif.tobytes()
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _corrupt(rng: np.random.Generator, data: bytes) -> tuple[bytes, str]:
    """A cut-off upload (header intact, scan data missing) or bytes that are no image at all."""
    if rng.random() < 0.5:
        keep = int(len(data) * rng.uniform(0.2, 0.6))
        return data[:keep], f"truncated to {keep} of {len(data)} bytes"
    size = int(rng.integers(1_000, 20_000))
    return rng.bytes(size), f"{size} random bytes"


def _is_jpeg_key(item: MediaItem) -> bool:
    return item.mime_type == "image/jpeg" and item.object_key.lower().endswith((".jpg", ".jpeg"))


def _rng(seed: int, key: str, purpose: str) -> np.random.Generator:
    digest = hashlib.blake2b(f"{seed}\0{key}\0{purpose}".encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "little"))


@contextmanager
def _block_cache(blocks: int) -> Iterator[None]:
    """Let Pillow reuse freed image memory: without it every new full-size image is fresh,
    page-faulted memory, which made drawing twice as slow."""
    before = Image.core.get_blocks_max()
    Image.core.set_blocks_max(max(before, blocks))
    try:
        yield
    finally:
        Image.core.set_blocks_max(before)


@contextmanager
def _bar(enabled: bool, total: int) -> Iterator[Any]:
    with Progress(
        TextColumn("[bold]media[/] images"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=True,
    ) as bar:
        task = bar.add_task("images", total=total)
        yield lambda: bar.update(task, advance=1)
