"""The true engagement probability of any (viewer, post, slot, age), for users who read the feeds
the platform serves: the generator's `TruthModel` evaluated with the hidden factors it drew.

The factors come from the workload's ground truth (affinity per follow or already-shown pair,
content preference per user and media type, post quality) and its `post_created` events (media
type, created time). A pair the generator never drew (a stranger shown for the first time) gets
the structural affinity of a pair with nothing in common (`affinity_base`) plus a latent part
drawn from a hash of the pair, so the same pair always has the same truth.

Not modelled here (their terms are 0): interest match and its interaction with visible quality,
location, velocity, repeat engagement, and the structure (follows, shared topics, city) of pairs
the generator never drew. The oracle is
therefore the truth of a slightly simpler world than the generator's; every arm is judged by
the same one, which is what a comparison needs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import orjson

from workload.generator import Workload
from workload.ground_truth import MEDIA_TYPES, TruthModel


@dataclass
class TruthOracle:
    truth: TruthModel
    affinity: dict[tuple[int, int], float]
    preference: dict[tuple[int, str], float]
    quality: dict[int, float]
    media: dict[int, str]
    created_s: dict[int, float]
    users: list[int]

    @classmethod
    def of(cls, workload: Workload) -> TruthOracle:
        gt = workload.ground_truth
        affinity = dict(
            zip(
                zip(gt.affinity["viewer"].tolist(), gt.affinity["author"].tolist(), strict=True),
                gt.affinity["affinity"].tolist(),
                strict=True,
            )
        )
        preference = dict(
            zip(
                zip(
                    gt.content_preference["user"].tolist(),
                    gt.content_preference["media_type"].tolist(),
                    strict=True,
                ),
                gt.content_preference["preference"].tolist(),
                strict=True,
            )
        )
        quality = dict(
            zip(
                gt.post_quality["post_id"].tolist(),
                gt.post_quality["quality"].tolist(),
                strict=True,
            )
        )
        media: dict[int, str] = {}
        created: dict[int, float] = {}
        for record in workload.records:
            if record.event_type != "post_created" or record.is_bad:
                continue
            event = orjson.loads(record.line)
            media[int(event["post_id"])] = str(event["media_type"])
            created[int(event["post_id"])] = _epoch(event["occurred_at"])
        users = sorted(int(u) for u in gt.content_preference["user"].unique())
        return cls(workload.config.truth, affinity, preference, quality, media, created, users)

    def pair_affinity(self, viewer: int, author: int) -> float:
        found = self.affinity.get((viewer, author))
        if found is not None:
            return found
        digest = hashlib.sha256(f"{viewer}:{author}".encode()).digest()
        normal = np.random.default_rng(int.from_bytes(digest[:8], "big")).standard_normal()
        t = self.truth
        return float(t.affinity_base + t.affinity_latent_sd * normal)

    def probability(
        self,
        viewer: int,
        post_ids: list[int],
        author_ids: list[int],
        positions: list[int],
        now_s: float,
    ) -> np.ndarray:
        """P(engage) of each shown post; `now_s` is the viewer's clock (epoch seconds)."""
        means = dict(zip(MEDIA_TYPES, self.truth.pref_means().tolist(), strict=True))
        affinity = np.array([self.pair_affinity(viewer, a) for a in author_ids])
        preference = np.array(
            [
                self.preference.get((viewer, m := self.media.get(p, "photo")), means.get(m, 0.0))
                for p in post_ids
            ]
        )
        quality = np.array([self.quality.get(p, 0.0) for p in post_ids])
        age = np.array([(now_s - self.created_s.get(p, now_s)) / 3600.0 for p in post_ids])
        media = np.array([MEDIA_TYPES.index(self.media.get(p, "photo")) for p in post_ids])
        return self.truth.probability(
            affinity, preference, quality, age, np.asarray(positions, dtype=np.float64), media
        )


def _epoch(text: str) -> float:
    from contracts.timestamps import parse_timestamp

    return parse_timestamp(text).timestamp()
