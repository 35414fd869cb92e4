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
    posts: pd.DataFrame  # post_id, author_id, created_at, is_deleted


def load_interactions(client: Client, settings: Settings) -> Interactions:
    intermediate = settings.intermediate_database
    marts = settings.marts_database
    follows = client.query_df(
        f"select follower_id, followee_id, followed_since from {intermediate}.int_follow_graph"
    )
    engagements = client.query_df(
        "select viewer_id, post_id, author_id, toString(engagement_type) as engagement_type, "
        f"engaged_at from {marts}.fct_engagements"
    )
    posts = client.query_df(
        f"select post_id, author_id, created_at, is_deleted from {marts}.dim_posts"
    )
    engagements["weight"] = engagements["engagement_type"].map(ENGAGEMENT_WEIGHTS).fillna(1.0)
    for frame, column in (
        (follows, "followed_since"),
        (engagements, "engaged_at"),
        (posts, "created_at"),
    ):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return Interactions(
        follows.astype({"follower_id": "int64", "followee_id": "int64"}),
        engagements.astype({"viewer_id": "int64", "post_id": "int64", "author_id": "int64"}),
        posts.astype({"post_id": "int64", "author_id": "int64", "is_deleted": "bool"}),
    )
