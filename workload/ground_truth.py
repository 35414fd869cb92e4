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
                + interest * interest_match[v, q]
                + interest_quality * interest_match[v, q] * visible[q]
                + location_city * same_city[v, q] + location_country * same_country[v, q]
                - location_distance * log1p(distance_km[v, q] / 100)
                + velocity * log1p(engagements_before[q])
                + repeat * log1p(pair_engagements_before[v, a])
                - recency_<m> * log1p(age) - position * log1p(pos)
        p     = sigmoid(logit)

    and the viewer engages (likes, comments, saves or shares) with probability p.

    - affinity[v, a] = structural + affinity_latent_sd * latent[v, a], latent ~ N(0, 1) hidden;
      structural (`structural_affinity`) grows as in real apps with what the platform can see:
      v follows a, a follows v, the share of their declared interests they have in common
      (Jaccard), the same home city, and friends of friends (log1p of v's followees who follow
      a); follow relations are the pair's whole history in the window ("ever");
    - pair_engagements_before: v's engagements with a's posts from sessions in earlier hours
      (people come back to whom they engaged with);
    - interest_match: the share of the post's hashtags whose topic is one of the viewer's
      interests (0 for a post without hashtags);
    - interest_quality: an interaction no additive model on the raw inputs represents: how good
      a post looks matters more when it is on the viewer's topics;
    - recency_<m>: decay per media type (videos stay watchable longer than photos), another
      interaction (age x media type);
    - same_city / same_country / distance_km: the post's tagged location against the viewer's
      home (all three terms 0 for a post without a location);
    - engagements_before: the post's engagements from sessions in earlier hours (velocity: posts
      that collect engagement early keep collecting it);
    - quality = visible_quality_sd * visible[q] + quality_sd * latent[q] (+ celebrity bonus),
      where visible[q] ~ N(0, 1) is what the media shows (the first item's bytes per pixel, a
      resolution and compression proxy) and latent[q] ~ N(0, 1) stays hidden.

    Content preference ~ N(pref_mean_<m>, pref_sd); a post is about one of its author's interests
    with probability topical_share, and its hashtags come mostly from that topic.
    """

    b0: float = -3.1
    recency_photo: float = 0.45
    recency_video: float = 0.08
    recency_carousel: float = 0.30
    position: float = 0.15
    affinity_base: float = -1.0
    affinity_follow: float = 0.9
    affinity_followed_by: float = 0.4
    affinity_topic: float = 1.0
    affinity_city: float = 0.5
    affinity_fof: float = 0.15
    affinity_latent_sd: float = 0.35
    repeat: float = 0.5
    pref_mean_photo: float = 0.0
    pref_mean_video: float = 0.15
    pref_mean_carousel: float = 0.05
    pref_sd: float = 0.5
    quality_sd: float = 0.4
    visible_quality_sd: float = 0.4
    celebrity_quality_bonus: float = 0.3
    interest: float = 1.2
    interest_quality: float = 1.0
    topical_share: float = 0.8
    topic_tag_boost: float = 40.0
    location_probability: float = 0.45
    home_location_share: float = 0.7
    location_city: float = 0.8
    location_country: float = 0.5
    location_distance: float = 0.08
    velocity: float = 0.2

    def pref_means(self) -> np.ndarray:
        """Mean preference per media type, in MEDIA_TYPES order."""
        return np.array([self.pref_mean_photo, self.pref_mean_video, self.pref_mean_carousel])

    def recency_rates(self) -> np.ndarray:
        """Recency decay per media type, in MEDIA_TYPES order."""
        return np.array([self.recency_photo, self.recency_video, self.recency_carousel])

    def structural_affinity(
        self,
        follows: np.ndarray,
        followed_by: np.ndarray,
        topic_overlap: np.ndarray,
        same_city: np.ndarray,
        common_follows: np.ndarray,
    ) -> np.ndarray:
        """The visible part of a pair's affinity (see the class docstring)."""
        return np.asarray(
            self.affinity_base
            + self.affinity_follow * np.asarray(follows, dtype=np.float64)
            + self.affinity_followed_by * np.asarray(followed_by, dtype=np.float64)
            + self.affinity_topic * np.asarray(topic_overlap, dtype=np.float64)
            + self.affinity_city * np.asarray(same_city, dtype=np.float64)
            + self.affinity_fof * np.log1p(np.asarray(common_follows, dtype=np.float64))
        )

    def logit(
        self,
        affinity: np.ndarray,
        content_pref: np.ndarray,
        quality: np.ndarray,
        age_hours: np.ndarray,
        position: np.ndarray,
        media: np.ndarray,
        interest_match: np.ndarray | float = 0.0,
        visible_quality: np.ndarray | float = 0.0,
        same_city: np.ndarray | float = 0.0,
        same_country: np.ndarray | float = 0.0,
        distance_km: np.ndarray | float = np.nan,
        engagements_before: np.ndarray | float = 0.0,
        pair_engagements_before: np.ndarray | float = 0.0,
    ) -> np.ndarray:
        """The logit of the docstring's formula (media: MEDIA_TYPES index); a NaN distance (no
        location) adds nothing."""
        distance = np.log1p(np.nan_to_num(np.asarray(distance_km, dtype=np.float64), nan=0.0) / 100)
        interest = np.asarray(interest_match, dtype=np.float64)
        return np.asarray(
            self.b0
            + affinity
            + content_pref
            + quality
            + self.interest * interest
            + self.interest_quality * interest * np.asarray(visible_quality, dtype=np.float64)
            + self.location_city * np.asarray(same_city, dtype=np.float64)
            + self.location_country * np.asarray(same_country, dtype=np.float64)
            - self.location_distance * distance
            + self.velocity * np.log1p(np.asarray(engagements_before, dtype=np.float64))
            + self.repeat * np.log1p(np.asarray(pair_engagements_before, dtype=np.float64))
            - self.recency_rates()[np.asarray(media)] * np.log1p(np.maximum(age_hours, 0.0))
            - self.position * np.log1p(position)
        )

    def probability(self, *args: np.ndarray, **kwargs: np.ndarray) -> np.ndarray:
        """sigmoid(logit(...)), with logit's arguments."""
        logit = self.logit(*args, **kwargs)
        return np.asarray(1.0 / (1.0 + np.exp(-logit)))


@dataclass
class GroundTruth:
    """The hidden factors and every impression's true engagement probability.

    impressions: event_id (of the impression event), viewer, post_id, author, shown_at (UTC),
        surface, position, media_type, age_hours, and every factor of the formula: affinity,
        content_pref, quality, interest_match, interest_quality (interest_match x visible),
        same_city, same_country, distance_km (NaN: the post has no location),
        engagements_before, pair_engagements_before, recency_decay (recency_<m> x log1p(age));
        then true_logit, true_probability, engaged
    affinity: viewer, author, affinity, structural, latent (affinity = structural + latent), and
        the structure: follows, followed_by, topic_overlap, same_city, common_follows (every
        follow pair, and every other pair ever shown)
    content_preference: user, media_type, preference
    post_quality: post_id, quality, visible_quality (the part the media shows)
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
