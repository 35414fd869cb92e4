"""The media pipeline: renditions, EXIF handling, quality features, videos, and the Dagster asset
end to end on chDB."""

from __future__ import annotations

import io
import re
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pytest
import yaml
from media_support import decoded, needs_ffmpeg
from PIL import Image

from appconfig import Settings
from ingestion.landing_source import landing_batches
from ingestion.loader import load_records
from mediapipeline.images import (
    GPS_IFD,
    ORIENTATION_TAG,
    RENDITIONS,
    process_image,
    rendition_sizes,
)
from mediapipeline.pipeline import (
    MediaJob,
    ensure_objects_table,
    insert_rows,
    objects_table_ddl,
    objects_table_migrations,
    process_media,
    process_object,
    rendition_key,
)
from mediapipeline.videos import process_video
from moderation.comment_rows import table_ddl as comment_checks_ddl
from objectstore import open_store, store_from_settings
from orchestration.media.assets import media_objects
from orchestration.resources import build_resources
from warehouse import clickhouse_client, ensure_raw_tables
from workload.config import WorkloadConfig
from workload.generator import generate
from workload.media import render_image, write_media
from workload.writer import write_workload

PROJECT = Path(__file__).resolve().parent.parent


# CI installs ffmpeg (.ci/run): there a missing ffmpeg must fail the run, not skip it
def jpeg(image: Image.Image, exif: Image.Exif | None = None) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92, exif=exif.tobytes() if exif is not None else b"")
    return buffer.getvalue()


@pytest.mark.parametrize("size", [(1080, 1350), (1920, 1080), (150, 120)])
def test_renditions_have_exact_target_sizes(size: tuple[int, int]) -> None:
    result = process_image(render_image("media/originals/1/2/0.jpg", "image/jpeg", *size))
    assert result.status == "ok" and (result.width, result.height) == size
    assert set(result.renditions) == set(RENDITIONS)
    for name, side in RENDITIONS.items():
        image = decoded(result.renditions[name].data)
        assert image.format == "JPEG" and image.size == (side, side), name
    if min(size) >= 1080:  # a detailed photo-sized original: about 200 KB at quality 85
        assert 100_000 < len(result.renditions["feed"].data) < 300_000


def test_orientation_6_is_applied_to_renditions() -> None:
    # stored 400x200: left half red, right half blue; Orientation 6 = rotate 90 deg clockwise
    stored = Image.new("RGB", (400, 200), (255, 0, 0))
    stored.paste((0, 0, 255), (200, 0, 400, 200))
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6
    result = process_image(jpeg(stored, exif))
    assert result.status == "ok" and result.orientation == 6
    assert (result.width, result.height) == (200, 400)  # upright: portrait
    feed = np.asarray(decoded(result.renditions["feed"].data), dtype=int)
    # upright, the red half is on top and the blue half below; the center crop keeps both
    assert feed[100, 540].argmax() == 0 and feed[980, 540].argmax() == 2
    assert decoded(result.renditions["feed"].data).getexif().get(ORIENTATION_TAG) is None


def test_location_exif_is_kept_out_of_renditions() -> None:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 12"  # Model
    exif[ORIENTATION_TAG] = 1
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2] = "N", (48.0, 51.0, 29.0)  # GPSLatitudeRef, GPSLatitude
    gps[3], gps[4] = "E", (2.0, 17.0, 40.0)
    data = jpeg(Image.new("RGB", (640, 480), (90, 120, 150)), exif)
    assert decoded(data).getexif().get_ifd(GPS_IFD), "the original carries a location"

    result = process_image(data)
    assert result.status == "ok" and result.had_location
    assert result.exif == {"Make": "PhoneMaker", "Model": "Phone 12"}
    for name, rendition in result.renditions.items():
        image = decoded(rendition.data)
        assert not image.getexif().get_ifd(GPS_IFD), name
        assert b"Exif" not in rendition.data[:200] and not image.info.get("exif"), name


def test_blurred_originals_score_lower_sharpness() -> None:
    for i in range(4):
        key = f"media/originals/7/{i}/0.jpg"
        sharp = process_image(render_image(key, "image/jpeg", 1080, 1080, "normal"))
        blurred = process_image(render_image(key, "image/jpeg", 1080, 1080, "blurred"))
        assert sharp.sharpness is not None and blurred.sharpness is not None
        assert blurred.sharpness < sharp.sharpness / 5, (key, sharp.sharpness, blurred.sharpness)
        assert sharp.brightness is not None and 0 <= sharp.brightness <= 255
        assert sharp.megapixels == pytest.approx(1.1664)
        assert sharp.blockiness is not None and sharp.blockiness > 0


def test_corrupt_and_unsupported_files_are_results_with_reasons(tmp_path: Path) -> None:
    good = render_image("media/originals/1/1/0.jpg", "image/jpeg", 800, 600)
    for data in (good[: len(good) // 3], b"\x00garbage" * 500, b""):
        result = process_image(data)
        assert result.status == "corrupt" and result.reason and not result.renditions
    gif = io.BytesIO()
    Image.new("P", (20, 20)).save(gif, "GIF")
    assert process_image(gif.getvalue()).status == "unsupported"

    # through the pipeline: recorded with the reason, the other objects still processed
    store = open_store(f"file://{tmp_path}/objects")
    store.put("media/originals/1/1/0.jpg", good)
    store.put("media/originals/1/1/1.jpg", good[: len(good) // 3])
    store.put("media/originals/1/1/2.bin", b"??")
    jobs = [
        MediaJob("media/originals/1/1/0.jpg", "image/jpeg", 1, 1),
        MediaJob("media/originals/1/1/1.jpg", "image/jpeg", 1, 1),
        MediaJob("media/originals/1/1/2.bin", "application/octet-stream", 1, 1),
        MediaJob("media/originals/1/1/3.jpg", "image/jpeg", 1, 1),  # never uploaded
    ]
    database = f"media_{uuid.uuid4().hex[:10]}"
    with clickhouse_client(f"chdb://{tmp_path}/clickhouse") as client:
        report = process_media(client, database, lambda: store, jobs, workers=1)
        rows = client.query(f"select object_key, status, reason from {database}.objects")
        statuses = {key: (status, reason) for key, status, reason in rows.result_rows}
    assert report.missing == 1 and report.by_status == {"ok": 1, "corrupt": 1, "unsupported": 1}
    assert statuses["media/originals/1/1/0.jpg"] == ("ok", "")
    assert statuses["media/originals/1/1/1.jpg"][0] == "corrupt"
    assert "truncated" in statuses["media/originals/1/1/1.jpg"][1]
    assert statuses["media/originals/1/1/2.bin"][0] == "unsupported"
    assert store.exists(rendition_key("media/originals/1/1/0.jpg", "feed", ".jpg"))


def test_dbt_hook_creates_the_same_table_as_the_pipeline() -> None:
    project = yaml.safe_load((PROJECT / "transformations" / "dbt_project.yml").read_text())
    database = "{{ env_var('MEDIA_DATABASE', 'media') }}"
    moderation = "{{ env_var('MODERATION_DATABASE', 'moderation') }}"

    def normal(statement: str) -> str:
        return re.sub(r"\s+", " ", statement).strip()

    assert [normal(s) for s in project["on-run-start"]] == [
        normal(s)
        for s in [
            *objects_table_ddl(database),
            *objects_table_migrations(database),
            *comment_checks_ddl(moderation),
        ]
    ]


def synthetic_video(path: Path, width: int, height: int, seconds: float = 1.0) -> bytes:
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y", "-f", "lavfi",
            "-i", f"testsrc=size={width}x{height}:rate=30", "-t", str(seconds),
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return path.read_bytes()


@needs_ffmpeg
@pytest.mark.parametrize(
    ("size", "expected"),
    [((1280, 720), {"720p": 720, "480p": 480}), ((854, 480), {"480p": 480})],
)
def test_videos_get_a_thumbnail_and_no_rendition_taller_than_the_source(
    tmp_path: Path, size: tuple[int, int], expected: dict[str, int]
) -> None:
    result = process_video(synthetic_video(tmp_path / "in.mp4", *size))
    assert result.status == "ok", result.reason
    assert (result.width, result.height) == size and result.duration_ms == pytest.approx(
        1000, abs=100
    )
    assert result.codec == "h264" and result.sharpness is not None and result.sharpness > 0
    assert set(result.renditions) == {*expected, "thumbnail"}
    for name, height in expected.items():
        rendition = result.renditions[name]
        out = tmp_path / f"{name}.mp4"
        out.write_bytes(rendition.data)
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height",
             "-of", "csv=p=0", str(out)],
            check=True, capture_output=True, text=True,
        ).stdout.split(",")  # fmt: skip
        assert probe[0] == "h264" and int(probe[2]) == height <= size[1]
        assert int(probe[1]) == round(size[0] * height / size[1] / 2) * 2
    thumbnail = decoded(result.renditions["thumbnail"].data)
    assert thumbnail.format == "JPEG" and thumbnail.height == min(size[1], 480)


@needs_ffmpeg
def test_a_corrupt_video_is_a_result_with_a_reason() -> None:
    result = process_video(b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 5000)
    assert result.status == "corrupt" and result.reason and not result.renditions


def test_media_objects_asset_processes_a_workload_and_is_idempotent(settings: Settings) -> None:
    workload = generate(
        WorkloadConfig(users=40, days=1, seed=5, start=datetime(2026, 11, 1, tzinfo=UTC)),
        progress=False,
    )
    store = store_from_settings(settings)
    written = write_workload(store, settings.landing_prefix, workload)
    raw = settings.clickhouse_raw_database
    with clickhouse_client(settings.clickhouse_url) as client:
        ensure_raw_tables(client, raw)
        for _, records in landing_batches(
            store, settings.landing_prefix, sorted(written.partitions)
        ):
            load_records(client, raw, records)
    media = write_media(store, workload, limit=30, workers=1)
    truth = media.table.set_index("object_key")
    database = f"media_{uuid.uuid4().hex[:10]}"
    run_config = {"ops": {"media__objects": {"config": {"database": database, "workers": 2}}}}

    def materialize() -> dict[str, object]:
        result = dg.materialize([media_objects], resources=build_resources(), run_config=run_config)
        assert result.success
        (event,) = result.get_asset_materialization_events()
        meta = event.materialization.metadata
        return {k: getattr(v, "value", v) for k, v in meta.items()}

    first = materialize()
    with clickhouse_client(settings.clickhouse_url) as client:
        rows = client.query(
            f"select object_key, status, width, height, orientation, sharpness, rendition_keys, "
            f"post_id, story_id from {database}.objects final"
        ).result_rows
        post_keys = {
            k
            for (k,) in client.query(
                f"select distinct tupleElement(m, 'object_key') from {raw}.posts "
                f"array join media as m where event_type = 'post_created'"
            ).result_rows
        }
        story_keys = {
            k
            for (k,) in client.query(
                f"select distinct tupleElement(media, 'object_key') from {raw}.stories "
                f"where event_type = 'story_created'"
            ).result_rows
        }
    expected = (post_keys | story_keys) & set(truth.index)
    assert expected & post_keys and expected & story_keys
    assert {r[0] for r in rows} == expected
    assert first["processed"] == len(expected) == first["table_rows"]
    assert first["story_media"] == len(expected & story_keys)
    assert first["missing_originals"] == len(post_keys | story_keys) - len(expected)
    story_renditions = set(rendition_sizes("story"))
    for key, status, width, height, orientation, sharpness, renditions, post, story in rows:
        is_story = key in story_keys
        assert (story is not None, post is None) == (is_story, is_story)
        variant = truth.loc[key, "variant"]
        if variant == "corrupt":
            assert status == "corrupt" and not renditions
            continue
        assert status == "ok" and sharpness > 0
        assert set(renditions) == (story_renditions if is_story else set(RENDITIONS))
        upright = (truth.loc[key, "width"], truth.loc[key, "height"])
        if variant == "rotated":
            assert orientation == 6 and (height, width) == upright
        else:
            assert (width, height) == upright
        assert all(store.exists(k) for k in renditions.values())
    assert first["corrupt"] == sum(truth.loc[list(expected), "variant"] == "corrupt")

    second = materialize()
    assert second["pending"] == second["missing_originals"] == first["missing_originals"]
    assert second["processed"] == 0 and second["table_rows"] == first["table_rows"]


# --- content checks ---------------------------------------------------------------------------


def _grace_hopper() -> bytes:
    """A public-domain portrait (US Navy photograph) shipped in matplotlib's sample data."""
    from matplotlib import cbook

    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).read_bytes()


def test_content_checks_count_faces_and_score_nsfw() -> None:
    from moderation.media import scan_rgb

    portrait = process_image(_grace_hopper())
    assert portrait.status == "ok"
    assert portrait.face_count == 1
    assert portrait.nsfw_score is not None and portrait.nsfw_score < 0.1
    rgb = np.asarray(Image.open(io.BytesIO(_grace_hopper())).convert("RGB"))
    assert scan_rgb(np.concatenate([rgb, rgb], axis=1)).face_count == 2
    assert scan_rgb(np.full((300, 300, 3), 128, np.uint8)).face_count == 0
    corrupt = process_image(_grace_hopper()[:2000])
    assert corrupt.status == "corrupt" and corrupt.reason and corrupt.nsfw_score is None


def test_media_at_or_above_the_threshold_goes_to_the_moderation_queue(
    clickhouse: Any, settings: Settings, tmp_path: Path
) -> None:
    """No explicit image can ship with the tests: the threshold is lowered to put the portrait
    (score 0.0) in the queue, and the default keeps it out."""
    database = f"media_{settings.clickhouse_raw_database}"
    ensure_objects_table(clickhouse, database)
    store = open_store(f"file://{tmp_path}/objects")
    store.put("media/originals/1/5/0.jpg", _grace_hopper())
    job = MediaJob("media/originals/1/5/0.jpg", "image/jpeg", post_id=5, user_id=1)
    row = process_object(store, job)
    assert row is not None and row["face_count"] == 1
    insert_rows(clickhouse, database, [row])
    assert clickhouse.query(f"select count() from {database}.moderation_queue").result_rows == [
        (0,)
    ]
    insert_rows(clickhouse, database, [row], nsfw_threshold=0.0)
    queued = clickhouse.query(
        f"select post_id, face_count, reason from {database}.moderation_queue"
    ).result_rows
    assert queued == [(5, 1, "nsfw_score 0.00 >= 0.0")]
    stored = clickhouse.query(
        f"select nsfw_score, face_count from {database}.objects final"
    ).result_rows
    assert stored == [(0.0, 1)]
