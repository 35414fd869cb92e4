"""The knobs of a synthetic workload: one frozen object, so a run is reproducible from it alone.

Everything the generator does is a function of this config (and its seed); the manifest records
it and the run id is derived from it.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from workload.ground_truth import TruthModel

BAD_KINDS: tuple[str, ...] = (
    "malformed_json",
    "missing_field",
    "mistyped_field",
    "unknown_type",
    "future_timestamp",
    "duplicate",
)


def default_start(days: int) -> datetime:
    """Today 00:00 UTC minus `days`: the most recent complete window."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


@dataclass(frozen=True)
class WorkloadConfig:
    """Scale, seed and behaviour of one generated workload.

    `start` defaults to today 00:00 UTC minus `days`; `celebrities` to 0.5% of users (at least 2).
    Rates are per user and day; probabilities are per opportunity.
    """

    users: int = 1000
    days: int = 3
    start: datetime | None = None
    seed: int = 7
    bad_fraction: float = 0.02
    celebrities: int | None = None
    private_fraction: float = 0.15

    # users and the follower graph
    initial_user_fraction: float = 0.8  # accounts that sign up in the first hours of the window
    initial_signup_hours: float = 2.0
    follows_median: float = 20.0  # k ~ lognormal(log(median), sigma) accounts followed per user
    follows_sigma: float = 0.9
    popularity_alpha: float = 1.3  # ordinary popularity ~ 1 + Pareto(alpha)
    celebrity_follow_share: float = 0.3  # share of follow draws that go to celebrities
    # the graph's structure (workload.graph; calibrated with `python -m workload.graph_stats`)
    same_country_boost: float = 4.0  # a same-country account is this many times likelier
    # and a same-city one this many times more again: local circles are what make the top
    # friends-of-friends already followed (seed 7: 0.51 at 300, 0.46 at 30; real 0.60)
    same_city_boost: float = 300.0
    shared_interest_boost: float = 1.5  # each shared interest adds this to the weight factor
    closure_sharpness: float = 3.0  # a friend-of-friend's weight ~ (friends following it)^this
    triadic_fraction: float = 0.6  # share of a user's follows found among friends-of-friends
    follow_back_probability: float = 0.32  # a followed non-celebrity follows back
    approval_probability: float = 0.85
    approval_median_hours: float = 2.0
    unfollow_probability: float = 0.04
    refollow_probability: float = 0.3
    mute_probability: float = 0.02
    unmute_probability: float = 0.3
    blocks_per_follow: float = 0.008
    unblock_probability: float = 0.2
    profile_update_fraction: float = 0.25

    # content
    posts_per_day: float = 1.5
    stories_per_day: float = 0.6
    celebrity_activity: float = 3.0  # celebrities post this many times more
    media_mix: tuple[float, float, float] = (0.60, 0.25, 0.15)  # photo, video, carousel
    hashtag_vocabulary: int = 400
    hashtag_zipf: float = 1.1
    trending_hashtags: int = 3
    trending_boost: float = 30.0
    trending_hours: float = 8.0
    post_delete_probability: float = 0.03

    # sessions and engagement
    sessions_per_day: float = 4.0
    feed_page_mean: float = 10.0
    explore_probability: float = 0.25
    profile_probability: float = 0.15
    hashtag_probability: float = 0.08
    story_views_mean: float = 2.5
    unlike_probability: float = 0.03
    late_upload_probability: float = 0.015  # a session whose events reach the sink hours late
    truth: TruthModel = field(default_factory=TruthModel)

    # bad events: relative weights of the kinds (BAD_KINDS order)
    bad_kind_weights: tuple[float, ...] = (0.2, 0.2, 0.2, 0.1, 0.1, 0.2)

    def __post_init__(self) -> None:
        start = self.start if self.start is not None else default_start(self.days)
        if start.tzinfo is None or start.utcoffset() != timedelta(0):
            raise ValueError("start must be an aware UTC datetime")
        object.__setattr__(self, "start", start.astimezone(UTC))
        if self.celebrities is None:
            object.__setattr__(self, "celebrities", max(2, round(0.005 * self.users)))
        if self.users < 10:
            raise ValueError("users must be at least 10")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if not 0 <= self.bad_fraction < 0.5:
            raise ValueError("bad_fraction must be in [0, 0.5)")
        if not 2 <= self.n_celebrities < self.users // 2:
            raise ValueError("celebrities must be at least 2 and under half the users")
        if len(self.bad_kind_weights) != len(BAD_KINDS) or min(self.bad_kind_weights) < 0:
            raise ValueError(f"bad_kind_weights needs {len(BAD_KINDS)} non-negative weights")
        if abs(sum(self.media_mix) - 1) > 1e-9:
            raise ValueError("media_mix must sum to 1")

    @property
    def window_start(self) -> datetime:
        assert self.start is not None
        return self.start

    @property
    def window_end(self) -> datetime:
        return self.window_start + timedelta(days=self.days)

    @property
    def start_ms(self) -> int:
        return int(self.window_start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.days * 86_400_000

    @property
    def n_celebrities(self) -> int:
        assert self.celebrities is not None
        return self.celebrities

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the resolved start as ISO-8601, tuples as lists."""
        out = asdict(self)
        out["start"] = self.window_start.isoformat().replace("+00:00", "Z")
        return orjson.loads(orjson.dumps(out))

    @property
    def run_id(self) -> str:
        """Derived from the seed and the whole config: the same config always names the same run."""
        digest = hashlib.sha256(orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS))
        return f"wl-s{self.seed}-{digest.hexdigest()[:12]}"
