"""Image renditions, metadata and quality features from one uploaded original.

Renditions are made by **center-crop** (never padding): the largest centred rectangle of the
targets' aspect ratio is cut out of the upright image and resized with Lanczos, so every
rendition has exactly its target size (a small original is scaled up to it). Posts get squares
(RENDITIONS); stories get 9:16 portraits (STORY_RENDITIONS: 1080x1920, as the story viewer
fills the screen, and a 270x480 thumbnail for the story tray). They are JPEG quality 85 and carry **no
EXIF at all**: orientation is applied to the pixels first, and location (GPS) and every other
tag stay out of the renditions. A few non-location EXIF fields are kept in the metadata.

Quality features, computed on the decoded original:
- `megapixels`: width x height / 1e6;
- `sharpness`: variance of the Laplacian on the grayscale image downscaled to at most
  SHARPNESS_SIDE px on its long side (so the score does not grow with resolution); blur lowers it;
- `brightness`: mean luma (0..255);
- `nsfw_score` and `face_count`: content checks (`moderation.media`, models shipped in wheels);
- `blockiness`: JPEG compression-artifact estimate: mean absolute luma step across the 8x8
  block boundaries divided by the mean step inside blocks (about 1 = no visible blocking,
  higher = more blocking), on the stored (unrotated) pixels where the grid lies.

Nothing raises: an undecodable original gives a result with status `corrupt` and the reason,
a format the pipeline does not handle gives `unsupported`.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from moderation.media import scan_rgb

Status = Literal["ok", "corrupt", "unsupported"]
Layout = Literal["post", "story"]

JPEG_QUALITY = 85
# name -> square side in px, largest first (each is resized from the one before it)
RENDITIONS: dict[str, int] = {"feed": 1080, "profile": 320, "thumbnail": 150}
# stories: name -> (width, height), all 9:16, largest first
STORY_RENDITIONS: dict[str, tuple[int, int]] = {
    "story": (1080, 1920),
    "story_thumbnail": (270, 480),
}
SUPPORTED_FORMATS = {"JPEG", "PNG", "WEBP"}
SHARPNESS_SIDE = 512
BLOCK = 8
MAX_PIXELS = 100_000_000
MODERATION_SIDE = 640  # content checks see the upright image at most this large  # larger originals are refused as unsupported (decompression bombs)
ORIENTATION_TAG = 0x0112
EXIF_IFD = 0x8769
GPS_IFD = 0x8825
# EXIF fields kept in the metadata (never in renditions); location is not among them.
KEPT_EXIF = {
    0x010F: "Make",
    0x0110: "Model",
    0x0131: "Software",
    0x0132: "DateTime",
    0x9003: "DateTimeOriginal",
    0x829A: "ExposureTime",
    0x829D: "FNumber",
    0x8827: "ISOSpeedRatings",
    0x920A: "FocalLength",
    0xA434: "LensModel",
}


@dataclass
class Rendition:
    data: bytes
    width: int
    height: int
    format: str = "JPEG"


@dataclass
class ImageResult:
    """What one original gave: status, metadata, quality features and renditions by name.

    `width` and `height` are the upright (display) size, after the EXIF orientation."""

    status: Status
    reason: str = ""
    format: str = ""
    width: int | None = None
    height: int | None = None
    bytes: int = 0
    orientation: int = 1
    megapixels: float | None = None
    sharpness: float | None = None
    brightness: float | None = None
    blockiness: float | None = None
    nsfw_score: float | None = None  # moderation.media: NudeNet, 0..1
    face_count: int | None = None  # moderation.media: OpenCV Haar cascade
    exif: dict[str, str] = field(default_factory=dict)
    had_location: bool = False
    renditions: dict[str, Rendition] = field(default_factory=dict)


def rendition_sizes(layout: Layout = "post") -> dict[str, tuple[int, int]]:
    """The renditions of one layout: name -> (width, height), largest first."""
    if layout == "story":
        return dict(STORY_RENDITIONS)
    return {name: (side, side) for name, side in RENDITIONS.items()}


def process_image(data: bytes, layout: Layout = "post") -> ImageResult:
    """Renditions, metadata and quality features of one original; never raises."""
    try:
        return _process(data, layout)
    except Image.DecompressionBombError as error:
        return ImageResult("unsupported", f"too many pixels: {error}", bytes=len(data))
    except UnidentifiedImageError:
        return ImageResult("corrupt", "not a decodable image", bytes=len(data))
    except Exception as error:  # any decoder failure is the file's fault
        return ImageResult("corrupt", f"{type(error).__name__}: {error}", bytes=len(data))


def _process(data: bytes, layout: Layout) -> ImageResult:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(data))
        if image.format not in SUPPORTED_FORMATS:
            return ImageResult("unsupported", f"image format {image.format}", bytes=len(data))
        if image.width * image.height > MAX_PIXELS:
            return ImageResult(
                "unsupported",
                f"{image.width}x{image.height} exceeds {MAX_PIXELS} px",
                bytes=len(data),
            )
        image.load()  # a truncated file fails here
    exif = image.getexif()
    orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
    kept = _kept_exif(exif)
    had_location = bool(exif.get_ifd(GPS_IFD)) or GPS_IFD in exif

    rgb = image.convert("RGB")
    gray = rgb.convert("L")
    blockiness = _blockiness(np.asarray(gray, dtype=np.float32))
    brightness = float(np.asarray(gray, dtype=np.float32).mean())
    sharpness = laplacian_variance(gray)

    upright = ImageOps.exif_transpose(rgb) if orientation != 1 else rgb
    width, height = upright.size
    scores = scan_rgb(_at_most(upright, MODERATION_SIDE))
    result = ImageResult(
        "ok",
        format=str(image.format),
        width=width,
        height=height,
        bytes=len(data),
        orientation=orientation,
        megapixels=width * height / 1e6,
        sharpness=sharpness,
        brightness=brightness,
        blockiness=blockiness,
        nsfw_score=scores.nsfw_score,
        face_count=scores.face_count,
        exif=kept,
        had_location=had_location,
    )
    result.renditions = make_renditions(upright, rendition_sizes(layout))
    return result


def _at_most(image: Image.Image, side: int) -> np.ndarray:
    if max(image.size) > side:
        image = image.copy()
        image.thumbnail((side, side), Image.Resampling.BILINEAR)
    return np.asarray(image)


def center_crop_box(width: int, height: int, aspect: float) -> tuple[int, int, int, int]:
    """The largest centred box of `aspect` (width / height) inside width x height."""
    if width / height > aspect:  # too wide: cut the sides
        crop_w, crop_h = max(1, round(height * aspect)), height
    else:  # too tall: cut top and bottom
        crop_w, crop_h = width, max(1, round(width / aspect))
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return left, top, left + crop_w, top + crop_h


def make_renditions(
    upright: Image.Image, sizes: dict[str, tuple[int, int]] | None = None
) -> dict[str, Rendition]:
    """Center-crop to the targets' aspect, then resize to each size (default: the square post
    renditions); JPEG q85, no EXIF. Each smaller rendition is resized from the previous one
    (cheaper, same result within JPEG noise)."""
    sizes = sizes or rendition_sizes("post")
    first_w, first_h = next(iter(sizes.values()))
    current = upright.crop(center_crop_box(upright.width, upright.height, first_w / first_h))
    renditions = {}
    for name, (width, height) in sizes.items():
        current = current.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=2.0)
        buffer = io.BytesIO()
        current.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=False)
        renditions[name] = Rendition(buffer.getvalue(), width, height)
    return renditions


def laplacian_variance(gray: Image.Image) -> float:
    """Variance of the 4-neighbour Laplacian on `gray` downscaled to <= SHARPNESS_SIDE px."""
    scale = SHARPNESS_SIDE / max(gray.size)
    if scale < 1:
        size = (max(3, round(gray.width * scale)), max(3, round(gray.height * scale)))
        gray = gray.resize(size, Image.Resampling.BOX)
    a = np.asarray(gray, dtype=np.float32)
    if a.shape[0] < 3 or a.shape[1] < 3:
        return 0.0
    lap = 4 * a[1:-1, 1:-1] - a[:-2, 1:-1] - a[2:, 1:-1] - a[1:-1, :-2] - a[1:-1, 2:]
    return float(lap.var())


def _blockiness(a: np.ndarray) -> float | None:
    """Mean |step| across 8x8 block boundaries over mean |step| elsewhere (both directions)."""
    if a.shape[0] < 2 * BLOCK or a.shape[1] < 2 * BLOCK:
        return None
    ratios = []
    for steps in (np.abs(np.diff(a, axis=1)), np.abs(np.diff(a, axis=0)).T):
        # steps[:, j] is the step between column j and j + 1; j % 8 == 7 crosses a boundary
        boundary = np.zeros(steps.shape[1], dtype=bool)
        boundary[BLOCK - 1 :: BLOCK] = True
        inside = float(steps[:, ~boundary].mean())
        ratios.append(float(steps[:, boundary].mean()) / max(inside, 1e-6))
    return float(np.mean(ratios))


def _kept_exif(exif: Image.Exif) -> dict[str, str]:
    kept: dict[str, str] = {}
    sources = [dict(exif), dict(exif.get_ifd(EXIF_IFD))]
    for tags in sources:
        for tag, name in KEPT_EXIF.items():
            if tag in tags and name not in kept:
                value = tags[tag]
                if isinstance(value, bytes):
                    value = value.decode("utf-8", "replace")
                kept[name] = str(value).strip("\x00 ")[:200]
    return kept
