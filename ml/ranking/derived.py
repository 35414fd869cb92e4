"""Features the ranker derives from the feature service's columns at scoring time.

Engagement depends on how the viewer likes *this post's* media type, and on how good the post
and its author are. The feature service gives the viewer's engagements and impressions per media
type and the post's and author's counts; the derived columns turn them into smoothed log rates
(a prior of 0.5 engagements in 8 impressions keeps a post with 1 of 1 from looking perfect).
They are pure functions of the row, so serving computes them exactly as training did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ml.ranking.columns import ColumnTable, Table, floats, texts

MEDIA_TYPES = ("photo", "video", "carousel")
MEDIA_COLUMN = "post_attributes__media_type"
MEDIA_INDEX = {media_type: i for i, media_type in enumerate(MEDIA_TYPES, start=1)}
PRIOR_ENGAGEMENTS = 0.5
PRIOR_IMPRESSIONS = 8.0


def _values(frame: Table, name: str) -> np.ndarray:
    if name not in frame:
        return np.zeros(len(frame))
    values = floats(frame[name])
    return np.where(np.isnan(values), 0.0, values)


def smoothed_log_rate(engagements: np.ndarray, impressions: np.ndarray) -> np.ndarray:
    return np.asarray(
        np.log(
            (np.maximum(engagements, 0.0) + PRIOR_ENGAGEMENTS)
            / (np.maximum(impressions, 0.0) + PRIOR_IMPRESSIONS)
        )
    )


def _media_type_masks(frame: Table) -> list[np.ndarray]:
    """Per media type of MEDIA_TYPES, the rows of that type: from the column's text codes when
    the table has them (one gather, no string comparisons), else from the texts."""
    coded = frame.coded(MEDIA_COLUMN) if isinstance(frame, ColumnTable) else None
    if coded is not None:
        codes, encoder = coded
        kinds = encoder.lookup(codes, MEDIA_INDEX)  # 0: another type or missing
        return [kinds == i for i in range(1, len(MEDIA_TYPES) + 1)]
    media = texts(frame[MEDIA_COLUMN])
    return [media == media_type for media_type in MEDIA_TYPES]


def viewer_media_type_rate(frame: Table) -> np.ndarray:
    """The viewer's smoothed engagement rate on posts of this post's media type."""
    rate = smoothed_log_rate(np.zeros(len(frame)), np.zeros(len(frame)))
    if MEDIA_COLUMN not in frame:
        return rate
    for media_type, rows in zip(MEDIA_TYPES, _media_type_masks(frame), strict=True):
        if rows.any():
            rate[rows] = smoothed_log_rate(
                _values(frame, f"user_content_preferences__engagements_{media_type}")[rows],
                _values(frame, f"user_content_preferences__impressions_{media_type}")[rows],
            )
    return rate


def post_rate(frame: Table) -> np.ndarray:
    return smoothed_log_rate(
        _values(frame, "post_engagement__engagements_total"),
        _values(frame, "post_engagement__impressions_total"),
    )


def author_rate(frame: Table) -> np.ndarray:
    received = sum(
        _values(frame, f"author_stats__{kind}s_received")
        for kind in ("like", "comment", "share", "save")
    )
    return smoothed_log_rate(np.asarray(received), _values(frame, "author_stats__impressions"))


@dataclass(frozen=True)
class Derivation:
    name: str
    inputs: tuple[str, ...]
    compute: Callable[[Table], np.ndarray]


DERIVATIONS: tuple[Derivation, ...] = (
    Derivation(
        "derived__viewer_media_type_rate",
        (
            MEDIA_COLUMN,
            *(
                f"user_content_preferences__{kind}_{m}"
                for m in MEDIA_TYPES
                for kind in ("engagements", "impressions")
            ),
        ),
        viewer_media_type_rate,
    ),
    Derivation(
        "derived__post_engagement_rate",
        ("post_engagement__engagements_total", "post_engagement__impressions_total"),
        post_rate,
    ),
    Derivation(
        "derived__author_engagement_rate",
        (
            *(f"author_stats__{k}s_received" for k in ("like", "comment", "share", "save")),
            "author_stats__impressions",
        ),
        author_rate,
    ),
)
BY_NAME = {d.name: d for d in DERIVATIONS}
