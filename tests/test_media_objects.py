"""Image objects behind the media events: they exist, decode as declared, and carry known defects."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from objectstore import ObjectStore, open_store
from workload import Workload, WorkloadConfig, generate
from workload.media import (
    IMAGE_FORMATS,
    ORIENTATION_TAG,
    MediaItem,
    MediaReport,
    media_items,
    render_image,
    variant_of,
    write_media,
    write_media_items,
)

DEFECTS = ("blurred", "rotated", "corrupt")


@pytest.fixture(scope="module")
def workload() -> Workload:
    return generate(
        WorkloadConfig(users=60, days=1, seed=2, start=datetime(2026, 11, 1, tzinfo=UTC))
    )


@pytest.fixture(scope="module")
def seed(workload: Workload) -> int:
    """A media seed under which every defect occurs at least once in this small workload."""
    images = [i for i in media_items(workload) if i.is_image]
    for candidate in range(500):
        if set(DEFECTS) <= {variant_of(i, candidate) for i in images}:
            return candidate
    raise AssertionError("no seed gives every defect")


@pytest.fixture(scope="module")
def written(
    workload: Workload, seed: int, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ObjectStore, MediaReport]:
    store = open_store(f"file://{tmp_path_factory.mktemp('objects')}")
    return store, write_media(store, workload, seed=seed)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def sharpness(image: Image.Image) -> float:
    """Variance of the 4-neighbour Laplacian of the grey image."""
    g = np.asarray(image.convert("L"), dtype=np.float64)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    return float(lap.var())


def test_every_image_of_the_events_is_written_at_its_key(
    workload: Workload, written: tuple[ObjectStore, MediaReport]
) -> None:
    store, report = written
    items = media_items(workload)
    images = [i for i in items if i.is_image]
    videos = [i for i in items if i.mime_type == "video/mp4"]
    assert images and videos
    assert report.images == len(images) == len(report.table)
    assert report.table["object_key"].tolist() == [i.object_key for i in images]
    assert report.skipped_videos == len(videos) and report.skipped_by_limit == 0
    for item in images:
        assert store.exists(item.object_key)
    for item in videos:
        assert not store.exists(item.object_key)
    assert set(report.by_variant) >= {"normal", *DEFECTS}
    assert report.by_variant["normal"] > 0.8 * report.images


def test_objects_decode_with_declared_size_and_format(
    workload: Workload, written: tuple[ObjectStore, MediaReport]
) -> None:
    store, report = written
    declared = {i.object_key: i for i in media_items(workload)}
    for row in report.table.itertuples():
        data = store.get(row.object_key)
        if row.variant == "corrupt":
            with pytest.raises((OSError, SyntaxError)):
                decoded(data)
            continue
        image = decoded(data)
        item = declared[row.object_key]
        assert image.size == (item.width, item.height)
        assert image.format == IMAGE_FORMATS[item.mime_type]
        orientation = image.getexif().get(ORIENTATION_TAG)
        assert orientation == (6 if row.variant == "rotated" else None)


def test_blurred_images_are_less_sharp_than_their_normal_rendering(
    written: tuple[ObjectStore, MediaReport], seed: int
) -> None:
    store, report = written
    blurred = report.table[report.table["variant"] == "blurred"]
    assert len(blurred)
    for row in blurred.itertuples():
        normal = render_image(row.object_key, row.mime_type, row.width, row.height, "normal", seed)
        soft, sharp = sharpness(decoded(store.get(row.object_key))), sharpness(decoded(normal))
        assert soft < 0.2 * sharp


def test_rotated_images_keep_the_normal_pixels(
    written: tuple[ObjectStore, MediaReport], seed: int
) -> None:
    store, report = written
    for row in report.table[report.table["variant"] == "rotated"].itertuples():
        normal = render_image(row.object_key, row.mime_type, row.width, row.height, "normal", seed)
        stored = np.asarray(decoded(store.get(row.object_key)))
        assert np.array_equal(stored, np.asarray(decoded(normal)))  # same encoder input


def test_the_table_in_the_store_matches_what_was_written(
    workload: Workload, written: tuple[ObjectStore, MediaReport]
) -> None:
    store, report = written
    assert report.table_key == f"ground_truth/{workload.run_id}/media_objects.parquet"
    table = pd.read_parquet(io.BytesIO(store.get(report.table_key)))
    pd.testing.assert_frame_equal(table, report.table)
    for row in table.itertuples():
        data = store.get(row.object_key)
        assert row.bytes == len(data)
        assert row.sha256 == hashlib.sha256(data).hexdigest()
    assert report.bytes == int(table["bytes"].sum())


def test_same_seed_same_bytes_other_seed_other_bytes(
    workload: Workload, written: tuple[ObjectStore, MediaReport], seed: int, tmp_path: Path
) -> None:
    store, report = written
    again = open_store(f"file://{tmp_path / 'again'}")
    other = open_store(f"file://{tmp_path / 'other'}")
    write_media(again, workload, seed=seed, limit=8, workers=1)
    write_media(other, workload, seed=seed + 1, limit=8)
    for key in report.table["object_key"].head(8):
        assert again.get(key) == store.get(key)
        assert other.get(key) != store.get(key)


def test_limit_writes_the_first_images_in_event_order(workload: Workload, tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    images = [i for i in media_items(workload) if i.is_image]
    report = write_media(store, workload, limit=5)
    assert report.images == 5 and report.skipped_by_limit == len(images) - 5
    assert report.table["object_key"].tolist() == [i.object_key for i in images[:5]]
    assert sorted(store.list("media/")) == sorted(i.object_key for i in images[:5])
    assert write_media(store, workload, limit=0).images == 0


def test_other_formats_and_declared_tiny_images(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    items = [
        MediaItem("media/x/tiny.jpg", "image/jpeg", 150, 120, 9_000, "post_created", "e1"),
        MediaItem("media/x/a.png", "image/png", 320, 240, 50_000, "post_created", "e2"),
        MediaItem("media/x/b.webp", "image/webp", 240, 320, 40_000, "story_created", "e3"),
        MediaItem("media/x/c.mp4", "video/mp4", 720, 1280, 9_000_000, "story_created", "e4"),
    ]
    report = write_media_items(store, items, "run-x")
    assert report.table["variant"].tolist()[0] == "tiny"
    assert report.skipped_videos == 1 and report.images == 3
    for item in items[:3]:
        image = decoded(store.get(item.object_key))
        assert image.size == (item.width, item.height)
        assert image.format == IMAGE_FORMATS[item.mime_type]


def test_only_jpeg_keys_are_corrupted() -> None:
    png = [
        MediaItem(f"m/{n}.png", "image/png", 400, 400, 1, "post_created", "e") for n in range(2000)
    ]
    variants = {variant_of(i, 0) for i in png}
    assert "corrupt" not in variants and {"normal", "blurred", "rotated"} <= variants
