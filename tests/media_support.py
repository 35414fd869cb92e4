"""Helpers shared by the media tests."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from mediapipeline.videos import ffmpeg_available

# ffmpeg is installed by .ci/run: under CI a missing one fails the video tests instead of
# skipping them
needs_ffmpeg = pytest.mark.skipif(
    not ffmpeg_available() and os.environ.get("CI", "").lower() not in ("1", "true", "yes"),
    reason="ffmpeg missing: bash scripts/install_ffmpeg.sh",
)


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
