"""Story media (9:16 renditions), video display rotation, the story_id column and the sensor
that launches media processing when new posts or stories are loaded."""

import io
import subprocess
import uuid
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from media_support import decoded, needs_ffmpeg
from PIL import Image

from appconfig import Settings
from mediapipeline.images import (
    GPS_IFD,
    ORIENTATION_TAG,
    STORY_RENDITIONS,
    center_crop_box,
    process_image,
)
from mediapipeline.pipeline import (
    MediaJob,
    ensure_objects_table,
    objects_table_ddl,
    process_media,
    rendition_key,
)
from mediapipeline.videos import process_video
from objectstore import store_from_settings
from orchestration.media.assets import RAW_POSTS, RAW_STORIES
from orchestration.media.sensors import build_media_sensor, rows_loaded, rows_loaded_by_runs
from warehouse import clickhouse_client


def striped_jpeg(size: tuple[int, int], exif: Image.Exif | None = None) -> bytes:
    """Red outer thirds, green middle third (along the long side): a crop shows which part
    survived."""
    width, height = size
    image = Image.new("RGB", size, (255, 0, 0))
    if width >= height:
        image.paste((0, 255, 0), (width // 3, 0, 2 * width // 3, height))
    else:
        image.paste((0, 255, 0), (0, height // 3, width, 2 * height // 3))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95, exif=exif.tobytes() if exif is not None else b"")
    return buffer.getvalue()


@pytest.mark.parametrize("size", [(1080, 1920), (1920, 1080), (720, 1280), (400, 300)])
def test_story_images_get_exact_9_16_renditions_by_center_crop(size: tuple[int, int]) -> None:
    exif = Image.Exif()
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0)}
    result = process_image(striped_jpeg(size, exif), layout="story")
    assert result.status == "ok" and result.had_location
    assert set(result.renditions) == set(STORY_RENDITIONS)
    for name, target in STORY_RENDITIONS.items():
        image = decoded(result.renditions[name].data)
        assert image.format == "JPEG" and image.size == target, name
        assert not image.getexif(), name  # nothing, GPS included, reaches a rendition
    story = np.asarray(decoded(result.renditions["story"].data), dtype=np.int32)
    centre = story[960, 540]
    assert centre[1] > 200 and centre[0] < 60  # the centre of the original is the centre here
    if size[0] / size[1] >= 27 / 16:  # wide enough that the 9:16 crop lies in the green third
        assert (story[:, :, 1] > 200).mean() > 0.97


def test_story_rotation_is_applied_before_cropping() -> None:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = 6  # stored landscape, displayed portrait
    result = process_image(striped_jpeg((1920, 1080), exif), layout="story")
    assert result.orientation == 6 and (result.width, result.height) == (1080, 1920)
    story = np.asarray(decoded(result.renditions["story"].data), dtype=np.int32)
    # upright portrait: red top and bottom thirds, green middle, no sides cut away
    assert story[100, 540, 0] > 200 and story[960, 540, 1] > 200 and story[1800, 540, 0] > 200


def test_center_crop_box_is_the_largest_centred_box_of_the_aspect() -> None:
    assert center_crop_box(1920, 1080, 9 / 16) == (656, 0, 1264, 1080)
    assert center_crop_box(1080, 1920, 9 / 16) == (0, 0, 1080, 1920)
    assert center_crop_box(1080, 1350, 1.0) == (0, 135, 1080, 1215)


def synthetic_video(path: Path, width: int, height: int, *extra: str) -> bytes:
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y", "-f", "lavfi",
            "-i", f"testsrc=size={width}x{height}:rate=30", "-t", "1",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", *extra, str(path),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return path.read_bytes()


def probed_size(path: Path) -> tuple[int, int]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout.strip().split(",")  # fmt: skip
    return int(out[0]), int(out[1])


@needs_ffmpeg
@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1080, 1920), {"story_1080p", "story_720p", "story_480p"}),
        ((720, 1280), {"story_720p", "story_480p"}),
        ((1280, 720), set()),  # landscape 720p cannot fill a 480x854 portrait without upscaling
    ],
)
def test_story_videos_get_exact_9_16_renditions_never_upscaled(
    tmp_path: Path, size: tuple[int, int], expected: set[str]
) -> None:
    result = process_video(synthetic_video(tmp_path / "in.mp4", *size), layout="story")
    assert result.status == "ok", result.reason
    assert set(result.renditions) == {*expected, "story_thumbnail"}
    targets = {"story_1080p": (1080, 1920), "story_720p": (720, 1280), "story_480p": (480, 854)}
    for name in expected:
        out = tmp_path / f"{name}.mp4"
        out.write_bytes(result.renditions[name].data)
        assert probed_size(out) == targets[name]
        assert len(result.renditions[name].data) > 0
    assert decoded(result.renditions["story_thumbnail"].data).size == (270, 480)


@needs_ffmpeg
def test_rotated_video_reports_upright_size_and_renditions_are_upright(tmp_path: Path) -> None:
    plain = synthetic_video(tmp_path / "plain.mp4", 1280, 720)
    rotated_path = tmp_path / "rotated.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(tmp_path / "plain.mp4"), "-c", "copy",
         "-metadata:s:v:0", "rotate=90", str(rotated_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    result = process_video(rotated_path.read_bytes())
    assert result.status == "ok", result.reason
    assert (result.width, result.height) == (720, 1280) and result.orientation in (6, 8)
    # the source is 1280 tall once upright: 1080p exists, and it is a portrait
    assert set(result.renditions) == {"1080p", "720p", "480p", "thumbnail"}
    out = tmp_path / "1080p.mp4"
    out.write_bytes(result.renditions["1080p"].data)
    assert probed_size(out) == (608, 1080)
    # the thumbnail equals the unrotated first frame turned the way the orientation code says
    stored = decoded(process_video(plain).renditions["thumbnail"].data).convert("L")
    turn = {6: Image.Transpose.ROTATE_270, 8: Image.Transpose.ROTATE_90}[result.orientation]
    expected = np.asarray(stored.transpose(turn).resize((270, 480)), dtype=np.float32)
    thumb = decoded(result.renditions["thumbnail"].data).convert("L").resize((270, 480))
    assert np.abs(np.asarray(thumb, dtype=np.float32) - expected).mean() < 12


def test_story_rows_carry_story_id_even_in_a_table_dbt_created(settings: Settings) -> None:
    store = store_from_settings(settings)
    store.put("media/stories/7/70.jpg", striped_jpeg((1080, 1920)))
    store.put("media/originals/7/71/0.jpg", striped_jpeg((1080, 1080)))
    database = f"media_{uuid.uuid4().hex[:10]}"
    jobs = [
        MediaJob("media/stories/7/70.jpg", "image/jpeg", None, 7, 70),
        MediaJob("media/originals/7/71/0.jpg", "image/jpeg", 71, 7),
    ]
    with clickhouse_client(settings.clickhouse_url) as client:
        for statement in objects_table_ddl(database):  # the table as dbt's hook creates it
            client.command(statement)
        report = process_media(client, database, lambda: store, jobs, workers=1)
        rows = client.query(
            f"select object_key, post_id, story_id, rendition_keys from {database}.objects "
            "order by object_key"
        ).result_rows
        ensure_objects_table(client, database)  # idempotent
    assert report.by_layout == {"story": 1, "post": 1}
    (story_key, post, story, renditions), (post_key, post_id, no_story, _) = rows[1], rows[0]
    assert story_key == "media/stories/7/70.jpg" and (post, story) == (None, 70)
    assert (post_key, post_id, no_story) == ("media/originals/7/71/0.jpg", 71, None)
    assert renditions == {
        "story": "media/renditions/story/stories/7/70.jpg",
        "story_thumbnail": "media/renditions/story_thumbnail/stories/7/70.jpg",
    }
    assert rendition_key("media/stories/7/70.mp4", "story_720p", ".mp4") == (
        "media/renditions/story_720p/stories/7/70.mp4"
    )
    assert decoded(store.get(renditions["story"])).size == (1080, 1920)


# --- the sensor --------------------------------------------------------------------------------


def test_media_sensor_runs_only_after_new_posts_or_stories_were_loaded() -> None:
    job = dg.define_asset_job("process_media", selection=[dg.AssetKey(["media", "objects"])])
    sensor = build_media_sensor(job)
    defs = dg.Definitions(
        assets=[
            dg.AssetSpec(RAW_POSTS),
            dg.AssetSpec(RAW_STORIES),
            dg.AssetSpec(dg.AssetKey(["media", "objects"])),
        ],
        sensors=[sensor],
    )
    instance = dg.DagsterInstance.ephemeral()

    def evaluate(cursor: str | None) -> tuple[list[dg.RunRequest], str | None, list[str]]:
        context = dg.build_multi_asset_sensor_context(
            monitored_assets=[RAW_POSTS, RAW_STORIES],
            instance=instance,
            definitions=defs,
            cursor=cursor,
        )
        result = sensor(context)
        if isinstance(result, dg.SkipReason):
            return [], context.cursor, [result.skip_message or ""]
        requests = result if isinstance(result, list) else [result]
        return requests, context.cursor, []

    requests, cursor, skipped = evaluate(None)
    assert not requests and "no new posts or stories" in skipped[0]

    # an ingestion run that loaded no posts (e.g. only views) launches nothing
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            RAW_POSTS, partition="2026-11-01-00:00", metadata={"rows_loaded": 0}
        )
    )
    requests, cursor, skipped = evaluate(cursor)
    assert not requests and skipped

    instance.report_runless_asset_event(
        dg.AssetMaterialization(RAW_STORIES, metadata={"rows_loaded_in_run": 3})
    )
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            RAW_POSTS, partition="2026-11-01-01:00", metadata={"rows_loaded": 5}
        )
    )
    requests, cursor, _ = evaluate(cursor)
    assert len(requests) == 1 and requests[0].run_key and requests[0].run_key.startswith("media-")
    assert requests[0].tags["media/loaded"] == str({"raw/posts": 5, "raw/stories": 3})

    requests, cursor, skipped = evaluate(cursor)  # consumed: nothing new
    assert not requests and skipped


def test_rows_loaded_counts_a_multi_partition_run_once() -> None:
    """A ranged ingestion run records its total once per partition: count it once."""

    @dg.asset(
        key=RAW_POSTS,
        partitions_def=dg.StaticPartitionsDefinition(["p1", "p2", "p3"]),
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def raw_posts(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"rows_loaded": 7 * len(context.partition_keys)})

    instance = dg.DagsterInstance.ephemeral()
    ranged = {
        "dagster/asset_partition_range_start": "p1",
        "dagster/asset_partition_range_end": "p2",
    }
    assert dg.materialize([raw_posts], instance=instance, tags=ranged).success
    assert dg.materialize([raw_posts], instance=instance, partition_key="p3").success
    records = list(
        instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=RAW_POSTS), limit=10
        ).records
    )
    assert sorted(rows_loaded(r) for r in records) == [7, 14, 14]  # p3, then p1 and p2
    assert rows_loaded_by_runs(records) == 21
