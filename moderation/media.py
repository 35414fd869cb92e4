"""Media checks: an NSFW score from NudeNet and a face count from OpenCV's Haar cascade.

Both models ship inside their wheels (`nudenet/320n.onnx`, run by onnxruntime;
`cv2.data.haarcascades`): nothing is downloaded at run time. Each process loads them once, on
first use. The NSFW score is the highest confidence among NudeNet's exposed-nudity classes (0
when it finds none); posts at or above `NSFW_THRESHOLD` go to the moderation queue and out of
Explore and search.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

NSFW_THRESHOLD = 0.6
EXPLICIT_CLASSES = frozenset(
    {
        "FEMALE_BREAST_EXPOSED",
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "BUTTOCKS_EXPOSED",
        "ANUS_EXPOSED",
    }
)
FACE_SIDE = 640  # faces are counted on the image scaled to at most this long side


@dataclass(frozen=True)
class MediaScores:
    nsfw_score: float
    face_count: int


@lru_cache(maxsize=1)
def _detector() -> Any:
    from nudenet import NudeDetector

    return NudeDetector()  # its bundled 320n.onnx


@lru_cache(maxsize=1)
def _face_cascade() -> Any:
    import cv2

    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError("OpenCV's Haar cascade did not load")
    return cascade


def nsfw_score(bgr: np.ndarray) -> float:
    detections = _detector().detect(bgr)
    return max(
        (float(d["score"]) for d in detections if d.get("class") in EXPLICIT_CLASSES), default=0.0
    )


def face_count(bgr: np.ndarray) -> int:
    import cv2

    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    scale = FACE_SIDE / max(gray.shape)
    if scale < 1:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    faces = _face_cascade().detectMultiScale(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24)
    )
    return len(faces)


def scan_rgb(rgb: np.ndarray) -> MediaScores:
    """Scores of one upright RGB image (H x W x 3, uint8)."""
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    return MediaScores(nsfw_score(bgr), face_count(bgr))
