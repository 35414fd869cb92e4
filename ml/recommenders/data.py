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
    # what users said they like at signup (index user_id, one 0/1 column per topic) and what
    # posts are about (index post_id, share per topic, learned from hashtags point in time):
    # dbt's feat_user__topics / feat_post__topics; None when the features were not built
    user_topics: pd.DataFrame | None = None
    post_topics: pd.DataFrame | None = None

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
    user_topics, post_topics = _topics(client, settings)
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
        user_topics,
        post_topics,
    )


def _topics(client: Client, settings: Settings) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Each user's latest signup topics and each post's topic shares, columns named by topic
    (the dbt var `topics`, in the models' column order); (None, None) without the features."""
    features = settings.features_database
    try:
        users = client.query_df(f"select * from {features}.feat_user__topics")
        posts = client.query_df(f"select * from {features}.feat_post__topics")
    except Exception:  # a follow-only import, or marts built without the features layer
        return None, None
    if users.empty or posts.empty:
        return None, None
    picked = [c for c in users.columns if c.startswith("picked_")]
    latest = users.sort_values("event_timestamp", kind="stable").groupby("user_id").last()
    user_topics = latest[picked].astype("float64").rename(columns=lambda c: c[len("picked_") :])
    shares = [c for c in posts.columns if c.startswith("topic_")]
    post_topics = (
        posts.sort_values("event_timestamp", kind="stable")
        .groupby("post_id")
        .last()[shares]
        .astype("float64")
        .rename(columns=lambda c: c[len("topic_") :])
    )
    user_topics.index = user_topics.index.astype("int64")
    post_topics.index = post_topics.index.astype("int64")
    return user_topics, post_topics
