"""Media renditions: images/s and videos/s per core, 1 process and N processes, with a baseline.

Images: generated 1080x1350 JPEG originals (workload.media.render_image, a few defects mixed in
as the generator does) through the full rendition set (feed 1080, profile 320, thumbnail 150,
metadata and quality features) via the pipeline (object store reads and writes included).
Baseline in the same run: bare Pillow decode of the original + one 1080x1080 JPEG q85 encode.
Stories: generated 1080x1920 JPEG originals through the story renditions (1080x1920 + 270x480).
Videos: synthetic 1280x720 30 fps clips (ffmpeg testsrc) -> 720p + 480p H.264 + thumbnail;
baseline: one bare `ffmpeg -i in -c:v libx264 -preset veryfast` transcode at source size.

Besides wall-clock rates it reports objects per CPU-second of processing (each object's CPU in
the process that handled it, ffmpeg children included; pool start-up and the parent's inserts
are in the wall figure only): on a machine shared with other jobs the wall rate says how busy
the machine was, the CPU rate is what one core does.

    .venv/bin/python -m bench.media_renditions --images 120 --stories 60 --videos 6
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import platform
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from PIL import Image

from mediapipeline.pipeline import MediaJob, process_media
from mediapipeline.videos import ffmpeg_available
from objectstore import ObjectStore, open_store
from warehouse import clickhouse_client
from workload.media import Variant, render_image

VARIANT_CYCLE: tuple[Variant, ...] = ("normal",) * 16 + ("blurred", "rotated", "corrupt")


def image_objects(store: ObjectStore, n: int) -> list[MediaJob]:
    jobs = []
    for i in range(n):
        key = f"media/originals/{i % 50}/{i}/0.jpg"
        variant = VARIANT_CYCLE[i % len(VARIANT_CYCLE)]
        store.put(key, render_image(key, "image/jpeg", 1080, 1350, variant))
        jobs.append(MediaJob(key, "image/jpeg", i, i % 50))
    return jobs


def story_objects(store: ObjectStore, n: int) -> list[MediaJob]:
    jobs = []
    for i in range(n):
        key = f"media/stories/{i % 50}/{i}.jpg"
        variant = VARIANT_CYCLE[i % len(VARIANT_CYCLE)]
        store.put(key, render_image(key, "image/jpeg", 1080, 1920, variant))
        jobs.append(MediaJob(key, "image/jpeg", None, i % 50, 50_000 + i))
    return jobs


def video_objects(store: ObjectStore, work: Path, n: int, seconds: float) -> list[MediaJob]:
    jobs = []
    for i in range(n):
        path = work / f"v{i}.mp4"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
             f"testsrc=size=1280x720:rate=30:decimals={i % 3}", "-t", str(seconds),
             "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
            check=True,
        )  # fmt: skip
        key = f"media/originals/v/{i}/0.mp4"
        store.put(key, path.read_bytes())
        jobs.append(MediaJob(key, "video/mp4", 10_000 + i, 1))
    return jobs


def image_baseline(store: ObjectStore, jobs: list[MediaJob]) -> float:
    started = time.perf_counter()
    done = 0
    for job in jobs:
        try:
            image = Image.open(io.BytesIO(store.get(job.object_key))).convert("RGB")
        except OSError:
            continue
        side = min(image.size)
        image.crop((0, 0, side, side)).resize((1080, 1080)).save(io.BytesIO(), "JPEG", quality=85)
        done += 1
    return done / (time.perf_counter() - started)


def video_baseline(store: ObjectStore, work: Path, jobs: list[MediaJob]) -> float:
    started = time.perf_counter()
    for job in jobs:
        source = work / "baseline_in.mp4"
        source.write_bytes(store.get(job.object_key))
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-c:v", "libx264",
             "-preset", "veryfast", "-crf", "23", str(work / "baseline_out.mp4")],
            check=True,
        )  # fmt: skip
    return len(jobs) / (time.perf_counter() - started)


def timed(chdb: str, store_url: str, jobs: list[MediaJob], workers: int) -> tuple[float, float]:
    """(objects per wall second, objects per CPU second of processing) of one process_media run."""
    with clickhouse_client(chdb) as client:
        report = process_media(
            client,
            f"bench_{uuid.uuid4().hex[:8]}",
            functools.partial(open_store, store_url),
            jobs,
            workers=workers,
        )
    assert report.missing == 0 and report.processed == len(jobs)
    return report.processed / report.seconds, report.processed / report.cpu_seconds


def report_line(kind: str, workers: int, rates: tuple[float, float], base: float) -> str:
    wall, per_cpu = rates
    return (
        f"{kind}, {workers} process(es): {wall:.2f}/s wall ({wall / base:.2f}x baseline), "
        f"{per_cpu:.2f}/s per CPU-second; load average {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=120)
    parser.add_argument("--stories", type=int, default=60)
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--video-seconds", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-media-") as tmp:
        work = Path(tmp)
        store_url = f"file://{work}/objects"
        store = open_store(store_url)
        chdb = f"chdb://{work}/clickhouse"
        print(
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f} (other jobs on the machine)"
        )
        images = image_objects(store, args.images)
        base = image_baseline(store, images)
        print(f"images: baseline (decode + one 1080x1080 q85 encode, 1 process): {base:.1f}/s")
        for workers in sorted({1, args.workers}):
            rates = timed(chdb, store_url, images, workers)
            print(report_line("images: post rendition set", workers, rates, base))
        if args.stories > 0:
            stories = story_objects(store, args.stories)
            for workers in sorted({1, args.workers}):
                rates = timed(chdb, store_url, stories, workers)
                print(report_line("stories: 1080x1920 + 270x480", workers, rates, base))
        if args.videos <= 0 or not ffmpeg_available():
            print("videos: skipped" + ("" if args.videos <= 0 else " (no ffmpeg)"))
            return
        videos = video_objects(store, work, args.videos, args.video_seconds)
        vbase = video_baseline(store, work, videos)
        print(
            f"videos: baseline ({args.video_seconds:g}s 720p30 -> one 720p transcode, "
            f"1 process): {vbase:.2f}/s"
        )
        for workers in sorted({1, args.workers}):
            rates = timed(chdb, store_url, videos, workers)
            print(report_line("videos: 720p + 480p + thumbnail", workers, rates, vbase))


if __name__ == "__main__":
    main()
