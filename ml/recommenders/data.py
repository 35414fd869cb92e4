"""What the recommenders learn from, read from the dbt models in one place.

Follows come from `int_follow_graph` (current follows, with when each started), engagements
from `fct_engagements` (standing likes, comments, shares, saves) and posts from `dim_posts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from appconfig import Settings

# how much one engagement says about taste, relative to a like
ENGAGEMENT_WEIGHTS: dict[str, float] = {"like": 1.0, "comment": 2.0, "save": 3.0, "share": 3.0}


@dataclass
class Interactions:
    follows: pd.DataFrame  # follower_id, followee_id, followed_since
    engagements: pd.DataFrame  # viewer_id, post_id, author_id, engagement_type, engaged_at, weight
    posts: pd.DataFrame  # post_id, author_id, created_at, is_deleted, media_type, hashtags,
    # location_id (0: no place): the content Explore's hybrid matches against a viewer's taste
    users: pd.DataFrame | None = None  # user_id, country (when dim_users has them)

    def explore_gap(self) -> str | None:
        """Why Explore cannot be trained on this data (None when it can)."""
        if self.posts.empty:
            return "no posts in dim_posts: Explore recommends posts and this data has none"
        if self.engagements.empty:
            return (
                f"no engagements in fct_engagements ({len(self.posts):,} posts): Explore learns "
                "taste from likes, comments, shares and saves and this data has none"
            )
        return None


def _frame(client: Client, sql: str, columns: list[str]) -> pd.DataFrame:
    """The query's rows; an empty result keeps its columns (query_df returns none for it), so
    partial data (a follow graph without engagements) reads as empty tables, not missing ones."""
    frame = client.query_df(sql)
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return frame


def load_interactions(client: Client, settings: Settings) -> Interactions:
    intermediate = settings.intermediate_database
    marts = settings.marts_database
    follows = _frame(
        client,
        f"select follower_id, followee_id, followed_since from {intermediate}.int_follow_graph",
        ["follower_id", "followee_id", "followed_since"],
    )
    engagements = _frame(
        client,
        "select viewer_id, post_id, author_id, toString(engagement_type) as engagement_type, "
        f"engaged_at from {marts}.fct_engagements",
        ["viewer_id", "post_id", "author_id", "engagement_type", "engaged_at"],
    )
    posts = _frame(
        client,
        "select post_id, author_id, created_at, is_deleted, toString(media_type) as media_type, "
        f"hashtags, ifNull(location_id, 0) as location_id from {marts}.dim_posts",
        [
            "post_id",
            "author_id",
            "created_at",
            "is_deleted",
            "media_type",
            "hashtags",
            "location_id",
        ],
    )
    try:  # a follow-only import may have no profiles: who to follow then works without country
        users = _frame(
            client,
            f"select user_id, country from {marts}.dim_users where country != ''",
            ["user_id", "country"],
        ).astype({"user_id": "int64"})
    except Exception:
        users = None
    weights = engagements["engagement_type"].map(ENGAGEMENT_WEIGHTS)
    engagements["weight"] = weights.fillna(1.0).astype("float64")
    for frame, column in (
        (follows, "followed_since"),
        (engagements, "engaged_at"),
        (posts, "created_at"),
    ):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return Interactions(
        follows.astype({"follower_id": "int64", "followee_id": "int64"}),
        engagements.astype({"viewer_id": "int64", "post_id": "int64", "author_id": "int64"}),
        posts.astype(
            {"post_id": "int64", "author_id": "int64", "is_deleted": "bool", "location_id": "int64"}
        ),
        users,
    )
