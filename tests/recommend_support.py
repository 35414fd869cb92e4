"""Generated data with a known structure for the recommender tests.

The platform's workload draws follows in proportion to popularity alone, so on it no model can
beat the popularity baseline by much (popularity IS the generating process). These graphs plant
communities: most follows stay inside the follower's community, so a collaborative model has
something to find that popularity cannot.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

START = datetime(2026, 11, 1, tzinfo=UTC)


def community_follows(
    users: int = 300,
    communities: int = 6,
    inside: float = 0.85,
    follows_mean: float = 12.0,
    seed: int = 3,
) -> pd.DataFrame:
    """follower_id, followee_id, followed_since; user ids start at 1000."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1000, 1000 + users, dtype=np.int64)
    community = rng.integers(0, communities, users)
    popularity = 1.0 + rng.pareto(1.5, users)
    rows: list[tuple[int, int, datetime]] = []
    for user in range(users):
        k = 3 + rng.poisson(follows_mean)
        same = np.flatnonzero((community == community[user]) & (np.arange(users) != user))
        other = np.flatnonzero(community != community[user])
        chosen: set[int] = set()
        for _ in range(k * 3):
            if len(chosen) >= k:
                break
            pool = same if rng.random() < inside else other
            weights = popularity[pool] / popularity[pool].sum()
            chosen.add(int(rng.choice(pool, p=weights)))
        for followee in chosen:
            at = START + timedelta(seconds=int(rng.integers(0, 4 * 86_400)))
            rows.append((int(ids[user]), int(ids[followee]), at))
    frame = pd.DataFrame(rows, columns=["follower_id", "followee_id", "followed_since"])
    frame["followed_since"] = pd.to_datetime(frame["followed_since"], utc=True)
    return frame


def community_engagements(
    follows: pd.DataFrame, posts_per_user: int = 3, per_viewer: int = 15, seed: int = 5
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Posts by every followed user and engagements that follow taste: a viewer engages with
    posts of accounts followed by the accounts they follow (their community), not only their own
    follows. Returns (engagements, posts) shaped like `ml.recommenders.data.Interactions`."""
    rng = np.random.default_rng(seed)
    authors = np.unique(follows["followee_id"].to_numpy())
    post_rows = []
    post_id = 5_000_000
    for author in authors:
        for _ in range(posts_per_user):
            post_id += 1
            at = START + timedelta(seconds=int(rng.integers(0, 4 * 86_400)))
            post_rows.append((post_id, int(author), at, False))
    posts = pd.DataFrame(post_rows, columns=["post_id", "author_id", "created_at", "is_deleted"])
    posts["created_at"] = pd.to_datetime(posts["created_at"], utc=True)
    by_author = posts.groupby("author_id")["post_id"].apply(list).to_dict()
    created = posts.set_index("post_id")["created_at"]
    following = follows.groupby("follower_id")["followee_id"].apply(set).to_dict()
    rows = []
    for viewer, followed in following.items():
        second = {c for f in followed for c in following.get(f, ())} - {viewer}
        pool = sorted(second | followed)
        for author in rng.choice(pool, min(per_viewer, len(pool)), replace=False):
            post = int(rng.choice(by_author[int(author)]))
            at = created[post] + timedelta(minutes=1 + float(rng.exponential(24 * 60)))
            rows.append((int(viewer), post, int(author), "like", at, 1.0))
    engagements = pd.DataFrame(
        rows,
        columns=["viewer_id", "post_id", "author_id", "engagement_type", "engaged_at", "weight"],
    )
    engagements["engaged_at"] = pd.to_datetime(engagements["engaged_at"], utc=True)
    return engagements, posts


def spark_for_tests(tmp: Path) -> SparkSession:
    """The process's shared SparkSession, its scratch under a temp dir (started once: ~6 s)."""
    from appconfig import Settings
    from ml.spark import spark_session

    return spark_session(Settings(PLATFORM_DATA_DIR=tmp))
