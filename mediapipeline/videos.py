"""Video renditions and metadata with ffmpeg/ffprobe (Debian's packages, run as subprocesses).

- probe: `ffprobe -print_format json` gives the container format, duration and the first video
  stream's size;
- renditions: H.264 (libx264, yuv420p, +faststart) MP4 at 1080p, 720p and 480p, only those no
  taller than the source (never upscaled); width follows the aspect ratio (rounded to even);
  audio, if any, is re-encoded to AAC. One ffmpeg run decodes the source once for all outputs;
- thumbnail: the first frame as JPEG, no taller than THUMBNAIL_MAX_HEIGHT (aspect kept);
- stories instead get 9:16 renditions of exact size (STORY_HEIGHTS: 1080x1920, 720x1280,
  480x854), scaled to cover and center-cropped like story images, only those the source can
  fill without upscaling, and a 270x480 first-frame thumbnail;
- quality features (sharpness, brightness) come from that first frame, as for images.

Rotation: a phone stores a portrait video as landscape frames plus a display rotation (the
`rotate` tag or a display-matrix side data). ffmpeg applies it when transcoding (autorotate), so
renditions and thumbnail are upright; the reported width/height are the displayed (upright)
ones, rendition sizes are chosen from them, and the rotation is kept as an EXIF-style
orientation code (6 = 90 deg clockwise, 3 = 180, 8 = 270).

Nothing raises: an unreadable file gives status `corrupt` with ffprobe's/ffmpeg's message, a
file without a video stream gives `unsupported`.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from mediapipeline.images import STORY_RENDITIONS, Layout, Rendition, Status, laplacian_variance

HEIGHTS: dict[str, int] = {"1080p": 1080, "720p": 720, "480p": 480}
STORY_HEIGHTS: dict[str, tuple[int, int]] = {
    "story_1080p": (1080, 1920),
    "story_720p": (720, 1280),
    "story_480p": (480, 854),
}
STORY_THUMBNAIL = STORY_RENDITIONS["story_thumbnail"]
THUMBNAIL_MAX_HEIGHT = 480
# clockwise display rotation in degrees -> EXIF orientation code
ORIENTATION_OF_ROTATION = {0: 1, 90: 6, 180: 3, 270: 8}
CRF = 23
PRESET = "veryfast"
TIMEOUT_SECONDS = 600


@dataclass
class VideoResult:
    status: Status
    reason: str = ""
    format: str = ""
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    bytes: int = 0
    megapixels: float | None = None
    sharpness: float | None = None
    brightness: float | None = None
    codec: str = ""
    orientation: int = 1
    renditions: dict[str, Rendition] = field(default_factory=dict)


def ffmpeg_available() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def rendition_heights(source_height: int) -> dict[str, int]:
    """The renditions a source of this height gets: none taller than the source."""
    return {name: h for name, h in HEIGHTS.items() if h <= source_height}


def story_renditions(width: int, height: int) -> dict[str, tuple[int, int]]:
    """The 9:16 story renditions an upright source can fill by scaling down (cover + crop)."""
    return {
        name: (w, h) for name, (w, h) in STORY_HEIGHTS.items() if max(w / width, h / height) <= 1.0
    }


def clockwise_rotation(stream: dict[str, Any]) -> int:
    """The display rotation of a video stream, clockwise degrees in {0, 90, 180, 270}.

    The `rotate` tag is clockwise; a display matrix's `rotation` is counter-clockwise."""
    tag = stream.get("tags", {}).get("rotate")
    if tag not in (None, ""):
        degrees = float(tag)
    else:
        matrix = [d for d in stream.get("side_data_list", []) if "rotation" in d]
        degrees = -float(matrix[0]["rotation"]) if matrix else 0.0
    return round(degrees / 90.0) % 4 * 90


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's JSON (format and streams); raises CalledProcessError on unreadable input."""
    done = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            str(path),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def process_video(data: bytes, suffix: str = ".mp4", layout: Layout = "post") -> VideoResult:
    """Renditions, thumbnail and metadata of one original video; never raises."""
    if not ffmpeg_available():
        return VideoResult("unsupported", "ffmpeg is not installed", bytes=len(data))
    try:
        with tempfile.TemporaryDirectory(prefix="media-video-") as tmp:
            return _process(Path(tmp), data, suffix, layout)
    except subprocess.CalledProcessError as error:
        message = (error.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        return VideoResult(
            "corrupt",
            f"{Path(str(error.cmd[0])).name}: {message[-1] if message else error}"[:500],
            bytes=len(data),
        )
    except subprocess.TimeoutExpired:
        return VideoResult("corrupt", f"ffmpeg timed out after {TIMEOUT_SECONDS}s", bytes=len(data))
    except Exception as error:  # a bad file must not stop the batch
        return VideoResult("corrupt", f"{type(error).__name__}: {error}"[:500], bytes=len(data))


def _outputs(width: int, height: int, layout: Layout) -> tuple[dict[str, tuple[str, int]], str]:
    """Per rendition name its ffmpeg filter and height, and the thumbnail's filter."""
    if layout == "story":
        targets = {
            name: (f"scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h}", h)
            for name, (w, h) in story_renditions(width, height).items()
        }
        w, h = STORY_THUMBNAIL
        return targets, f"scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h}"
    targets = {name: (f"scale=-2:{h}", h) for name, h in rendition_heights(height).items()}
    return targets, f"scale=-2:{min(height, THUMBNAIL_MAX_HEIGHT)}"


def _process(tmp: Path, data: bytes, suffix: str, layout: Layout) -> VideoResult:
    source = tmp / f"source{suffix}"
    source.write_bytes(data)
    info = probe(source)
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "video"]
    if not streams:
        return VideoResult("unsupported", "no video stream", bytes=len(data))
    video = streams[0]
    rotation = clockwise_rotation(video)
    width, height = int(video["width"]), int(video["height"])
    if rotation in (90, 270):  # ffmpeg will turn the frames upright
        width, height = height, width
    duration = info.get("format", {}).get("duration") or video.get("duration")
    has_audio = any(s.get("codec_type") == "audio" for s in info.get("streams", []))
    targets, thumbnail_filter = _outputs(width, height, layout)

    command = ["ffmpeg", "-v", "error", "-nostdin", "-y", "-i", str(source)]
    for name, (video_filter, _) in targets.items():
        command += ["-map", "0:v:0"] + (["-map", "0:a:0"] if has_audio else [])
        command += ["-vf", video_filter, "-c:v", "libx264", "-preset", PRESET]
        command += ["-crf", str(CRF), "-pix_fmt", "yuv420p", "-movflags", "+faststart"]
        command += ["-c:a", "aac", "-b:a", "128k"] if has_audio else []
        command += [str(tmp / f"{name}.mp4")]
    command += ["-map", "0:v:0", "-frames:v", "1", "-vf", thumbnail_filter]
    command += ["-q:v", "3", str(tmp / "thumbnail.jpg")]
    subprocess.run(command, capture_output=True, check=True, timeout=TIMEOUT_SECONDS)

    renditions = {}
    for name, (_, h) in targets.items():
        out = tmp / f"{name}.mp4"
        out_w = int(probe(out)["streams"][0]["width"])
        renditions[name] = Rendition(out.read_bytes(), out_w, h, "MP4")
    thumb_bytes = (tmp / "thumbnail.jpg").read_bytes()
    frame = Image.open(io.BytesIO(thumb_bytes))
    thumbnail_name = "story_thumbnail" if layout == "story" else "thumbnail"
    renditions[thumbnail_name] = Rendition(thumb_bytes, frame.width, frame.height, "JPEG")
    gray = frame.convert("L")
    return VideoResult(
        "ok",
        format=str(info.get("format", {}).get("format_name", "")),
        width=width,
        height=height,
        duration_ms=round(float(duration) * 1000) if duration else None,
        bytes=len(data),
        megapixels=width * height / 1e6,
        sharpness=laplacian_variance(gray),
        brightness=sum(i * n for i, n in enumerate(gray.histogram())) / (gray.width * gray.height),
        codec=str(video.get("codec_name", "")),
        orientation=ORIENTATION_OF_ROTATION[rotation],
        renditions=renditions,
    )
