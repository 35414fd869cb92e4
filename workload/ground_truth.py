"""The hidden truth behind a workload: what models trained on the events should recover.

The engagement formula and all its coefficients live in `TruthModel`; the generator draws the
hidden factors from it and records them, with every impression's true probability, as DataFrames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MEDIA_TYPES: tuple[str, ...] = ("photo", "video", "carousel")


@dataclass(frozen=True)
class TruthModel:
    """The hidden engagement model, with every coefficient in one place.

    For an impression of post `q` (by `a`, of media type `m`) shown to viewer `v` at feed slot
    `pos` (0-based, within its surface), requested `age` hours after the post was created:

        logit = b0 + affinity[v, a] + content_pref[v, m] + quality[q]
                - recency * log1p(age) - position * log1p(pos)
        p     = sigmoid(logit)

    and the viewer engages (likes, comments, saves or shares) with probability p. The other
    fields say how the hidden factors are drawn: the affinity of a follower to a followee
    ~ N(follow_affinity_mean, follow_affinity_sd) (+ mutual_affinity_bonus when they follow each
    other), of anyone else ~ N(stranger_affinity_mean, stranger_affinity_sd); content preference
    ~ N(pref_mean_<m>, pref_sd); post quality ~ N(0, quality_sd) (+ celebrity_quality_bonus).
    """

    b0: float = -2.9
    recency: float = 0.30
    position: float = 0.15
    follow_affinity_mean: float = 0.5
    follow_affinity_sd: float = 0.7
    mutual_affinity_bonus: float = 0.4
    stranger_affinity_mean: float = -0.6
    stranger_affinity_sd: float = 0.5
    pref_mean_photo: float = 0.0
    pref_mean_video: float = 0.15
    pref_mean_carousel: float = 0.05
    pref_sd: float = 0.5
    quality_sd: float = 0.6
    celebrity_quality_bonus: float = 0.3

    def pref_means(self) -> np.ndarray:
        """Mean preference per media type, in MEDIA_TYPES order."""
        return np.array([self.pref_mean_photo, self.pref_mean_video, self.pref_mean_carousel])

    def logit(
        self,
        affinity: np.ndarray,
        content_pref: np.ndarray,
        quality: np.ndarray,
        age_hours: np.ndarray,
        position: np.ndarray,
    ) -> np.ndarray:
        return (
            self.b0
            + affinity
            + content_pref
            + quality
            - self.recency * np.log1p(np.maximum(age_hours, 0.0))
            - self.position * np.log1p(position)
        )

    def probability(
        self,
        affinity: np.ndarray,
        content_pref: np.ndarray,
        quality: np.ndarray,
        age_hours: np.ndarray,
        position: np.ndarray,
    ) -> np.ndarray:
        logit = self.logit(affinity, content_pref, quality, age_hours, position)
        return np.asarray(1.0 / (1.0 + np.exp(-logit)))


@dataclass
class GroundTruth:
    """The hidden factors and every impression's true engagement probability.

    impressions: event_id (of the impression event), viewer, post_id, author, shown_at (UTC),
        surface, position, media_type, age_hours, true_probability, engaged (bool)
    affinity: viewer, author, affinity  (every follow pair, and every other pair ever shown)
    content_preference: user, media_type, preference
    post_quality: post_id, quality
    parameters: the TruthModel coefficients, the celebrities, the trending hashtag windows
    """

    impressions: pd.DataFrame
    affinity: pd.DataFrame
    content_preference: pd.DataFrame
    post_quality: pd.DataFrame
    parameters: dict[str, Any] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "impressions": self.impressions,
            "affinity": self.affinity,
            "content_preference": self.content_preference,
            "post_quality": self.post_quality,
        }
