"""The serving snapshot: what the API needs from ClickHouse, loaded into memory at once.

In the embedded profile ClickHouse is chDB, which allows one process per data directory; a
server holding it would block Dagster and dbt. So the API never keeps a client open: it reads
posts, users, the follow graph, stories, notification digests and hashtag trends here, closes
the client, and answers from memory until the next refresh (periodic or `POST /admin/reload`).
"""

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from appconfig import Settings
from fanout.fanout import CelebrityPolicy
from serving.search import AutocompleteIndex
from serving.settings import ServingSettings
from warehouse import clickhouse_client


@dataclass
class Clock:
    """Request time: the wall clock, or the data's own time for generated/replayed data."""

    watermark: datetime
    loaded_monotonic: float
    mode: str = "data"

    def now(self) -> datetime:
        if self.mode == "wall":
            return datetime.now(UTC)
        return self.watermark + timedelta(seconds=time.monotonic() - self.loaded_monotonic)


@dataclass
class Posts:
    """Recent, undeleted posts as parallel arrays, with lookups by id and by author."""

    frame: pd.DataFrame  # post_id, author_id, created_ts, media_type, hashtags, popularity,
    # optionally location_id (0: none) and location_name (the tagged place, dim_posts)
    deleted: frozenset[int]
    index: dict[int, int] = field(default_factory=dict)
    by_author: dict[int, np.ndarray] = field(default_factory=dict)  # rows, newest first

    def __post_init__(self) -> None:
        self.frame = self.frame.sort_values("created_ts", ascending=False, ignore_index=True)
        self.post_ids = self.frame["post_id"].to_numpy("int64")
        self.author_ids = self.frame["author_id"].to_numpy("int64")
        self.created_ts = self.frame["created_ts"].to_numpy("float64")
        self.popularity = self.frame["popularity"].to_numpy("float64")
        n = len(self.frame)
        if "location_id" in self.frame:
            self.location_ids = self.frame["location_id"].fillna(0).to_numpy("int64")
            self.location_names = self.frame["location_name"].fillna("").astype(str).tolist()
        else:
            self.location_ids = np.zeros(n, dtype="int64")
            self.location_names = [""] * n
        self.index = {int(p): i for i, p in enumerate(self.post_ids)}
        self._by_id = np.argsort(self.post_ids, kind="stable")  # rows in id order
        self._sorted_ids = self.post_ids[self._by_id]
        groups: dict[int, list[int]] = defaultdict(list)
        for row, author in enumerate(self.author_ids):
            groups[int(author)].append(row)
        self.by_author = {a: np.asarray(rows, dtype="int64") for a, rows in groups.items()}

    def rows_or_missing(self, post_ids: np.ndarray) -> np.ndarray:
        """`index[p]` of each id, -1 for ids not among the posts: a binary search in numpy per
        id rather than a dict lookup in Python (the 1,000 ids of a `/v1/rank` request)."""
        ids = np.asarray(post_ids, dtype=np.int64)
        if not len(self._sorted_ids):
            return np.full(len(ids), -1, dtype="int64")
        at = np.searchsorted(self._sorted_ids, ids, side="right") - 1  # the last, as `index`
        at = np.maximum(at, 0)
        return np.where(self._sorted_ids[at] == ids, self._by_id[at], -1)

    def rows_of(self, post_ids: list[int]) -> np.ndarray:
        """Rows of the known posts among `post_ids` (unknown and deleted ones are dropped)."""
        return np.asarray([self.index[p] for p in post_ids if p in self.index], dtype="int64")


@dataclass
class ServingSnapshot:
    loaded_at: datetime
    clock: Clock
    posts: Posts
    users: pd.DataFrame  # user_id (index), username, is_private, follower_count, tier
    celebrities: frozenset[int]
    visibility: Any  # visibility.VisibilityGraph
    seen_posts: dict[int, frozenset[int]]
    stories: pd.DataFrame  # story_id, author_id, created_ts, expires_ts
    seen_stories: dict[int, frozenset[int]]
    affinity: dict[tuple[int, int], float]  # (viewer, author) -> score
    digests: pd.DataFrame
    hashtags: pd.DataFrame  # hashtag, trending_score, posts, hour_ts (latest hour per tag)
    search: AutocompleteIndex
    popular_rows: np.ndarray  # rows of posts, most engaged first
    trending_rows: np.ndarray  # rows of posts with the hottest hashtags, newest first (same length)
    load_seconds: float = 0.0

    def knows_user(self, user_id: int) -> bool:
        return user_id in self.users.index

    def follows(self, user_id: int) -> set[int]:
        return set(self.visibility.follows(user_id))


def _ts(series: pd.Series) -> np.ndarray:
    """Epoch seconds of a datetime column (naive values are UTC), whatever its unit."""
    values = pd.to_datetime(series, utc=True)
    return (values - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy("float64")


def celebrity_ids(users: pd.DataFrame, settings: Settings) -> frozenset[int]:
    """Authors pulled at read time rather than pushed: the same policy as the fan-out."""
    policy = CelebrityPolicy.from_settings(settings)
    return frozenset(
        int(user)
        for user, tier, followers in zip(
            users.index, users["tier"], users["follower_count"].fillna(0), strict=True
        )
        if policy.is_celebrity(tier, int(followers))
    )


def _pairs(frame: pd.DataFrame, key: str, value: str) -> dict[int, frozenset[int]]:
    grouped = frame.groupby(key)[value].agg(lambda v: frozenset(int(x) for x in v))
    return {int(k): v for k, v in grouped.items()}


def _trending_rows(posts: Posts, hashtags: pd.DataFrame, top: int = 20) -> np.ndarray:
    """Posts using one of the `top` trending hashtags first (newest first), then the rest by
    popularity, so it always has a row per post."""
    hot = set(hashtags.nlargest(top, "trending_score")["hashtag"].astype(str))
    tagged = np.fromiter(
        (bool(hot & {str(t).lower() for t in tags}) for tags in posts.frame["hashtags"]),
        dtype=bool,
        count=len(posts.frame),
    )
    by_popularity = np.argsort(-posts.popularity, kind="stable")
    return np.concatenate([np.flatnonzero(tagged), by_popularity[~tagged[by_popularity]]])


def _columns(columns: list[str], frame: pd.DataFrame) -> pd.DataFrame:
    """An empty result keeps its columns (query_df returns none): partial data, such as a
    follow graph without posts, is served as empty tables."""
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype=_empty_dtype(c)) for c in columns})
    return frame


def _empty_dtype(column: str) -> str:
    if column.endswith("_at"):
        return "datetime64[ns, UTC]"
    if column.endswith("_id") or column in ("engagements", "impressions", "events", "total_posts"):
        return "int64"
    if column in ("follower_count", "is_private"):
        return "int64" if column == "follower_count" else "bool"
    if column.endswith("score") or column == "last_posts":
        return "float64"
    return "object"


def load_snapshot(settings: Settings, serving: ServingSettings) -> ServingSnapshot:
    """Read everything the API serves from ClickHouse, then close the client."""
    from visibility import VisibilityGraph

    started = time.perf_counter()
    marts = settings.marts_database
    staging = settings.staging_database
    history_hours = max(settings.feed_window_hours, serving.story_hours, 24.0) + 24.0
    with clickhouse_client(settings.clickhouse_url) as client:
        watermark_value = client.query(
            f"select greatest((select max(created_at) from {marts}.dim_posts),"
            f" (select max(engaged_at) from {marts}.fct_engagements))"
        ).result_rows[0][0]
        if watermark_value is None:
            raise RuntimeError(f"the marts in {marts} are empty: build them first (dbt run)")
        watermark = pd.Timestamp(watermark_value).tz_localize(None).tz_localize(UTC)
        if serving.clock == "wall":
            watermark = pd.Timestamp(datetime.now(UTC))
        since = f"toDateTime64('{(watermark - pd.Timedelta(hours=history_hours)):%Y-%m-%d %H:%M:%S}', 3, 'UTC')"
        posts = _columns(
            [
                "post_id",
                "author_id",
                "created_at",
                "media_type",
                "hashtags",
                "location_id",
                "location_name",
                "engagements",
                "impressions",
            ],
            client.query_df(
                f"""
            select p.post_id as post_id, p.author_id as author_id, p.created_at as created_at,
                   toString(p.media_type) as media_type, p.hashtags as hashtags,
                   ifNull(p.location_id, 0) as location_id,
                   ifNull(p.location_name, '') as location_name,
                   ifNull(e.engagements, 0) as engagements, ifNull(e.impressions, 0) as impressions
            from {marts}.dim_posts as p
            left join {marts}.fct_post_engagement as e on p.post_id = e.post_id
            where not p.is_deleted and p.created_at >= {since}
            """
            ),
        )
        deleted = client.query(
            f"select post_id from {marts}.dim_posts where is_deleted"
        ).result_columns
        users = _columns(
            ["user_id", "username", "is_private", "follower_count", "tier"],
            client.query_df(
                f"select user_id, username, is_private, ifNull(follower_count, 0) as follower_count,"
                f" tier from {marts}.dim_users"
            ),
        )
        seen = _columns(
            ["viewer_id", "post_id"],
            client.query_df(
                f"select distinct viewer_id, assumeNotNull(post_id) as post_id"
                f" from {staging}.stg_raw__views"
                f" where event_type = 'impression' and post_id is not null and occurred_at >= {since}"
            ),
        )
        stories = _columns(
            ["story_id", "author_id", "created_at", "expires_at"],
            client.query_df(
                f"select story_id, author_id, created_at, expires_at from {marts}.fct_story_views"
                f" where expires_at >= {since}"
            ),
        )
        seen_stories = _columns(
            ["viewer_id", "story_id"],
            client.query_df(
                f"select distinct viewer_id, assumeNotNull(story_id) as story_id"
                f" from {staging}.stg_raw__views"
                f" where event_type = 'story_view' and occurred_at >= {since}"
            ),
        )
        affinity = _columns(
            ["viewer_id", "author_id", "affinity_score"],
            client.query_df(
                f"select viewer_id, author_id, affinity_score from {marts}.fct_user_author_affinity"
            ),
        )
        digests = _columns(
            [
                "digest_id",
                "recipient_id",
                "kind",
                "post_id",
                "window_start_at",
                "window_end_at",
                "latest_actor_id",
                "actors",
                "actor_ids",
                "events",
                "last_notified_at",
                "message",
            ],
            client.query_df(
                f"select digest_id, recipient_id, toString(kind) as kind, post_id, window_start_at,"
                f" window_end_at, latest_actor_id, actors, actor_ids, events, last_notified_at, message"
                f" from {marts}.fct_notification_digests where window_end_at >= {since}"
            ),
        )
        hashtags = _columns(
            ["hashtag", "trending_score", "last_posts", "last_hour_at", "total_posts"],
            client.query_df(
                f"""
            select hashtag, argMax(trending_score, hour_at) as trending_score,
                   argMax(posts, hour_at) as last_posts, max(hour_at) as last_hour_at,
                   sum(posts) as total_posts
            from {marts}.fct_hashtag_trends group by hashtag
            """
            ),
        )
        visibility = VisibilityGraph.from_clickhouse(client, settings)

    posts["created_ts"] = _ts(posts["created_at"])
    posts["popularity"] = posts["engagements"].astype("float64") / np.sqrt(
        posts["impressions"].astype("float64") + 1.0
    )
    users = users.set_index("user_id")
    hashtags = hashtags.rename(columns={"last_posts": "posts", "last_hour_at": "hour_at"})
    hashtags["hour_ts"] = _ts(hashtags["hour_at"])
    stories["created_ts"] = _ts(stories["created_at"])
    stories["expires_ts"] = _ts(stories["expires_at"])
    digests["window_end_ts"] = _ts(digests["window_end_at"])
    post_table = Posts(
        posts[
            [
                "post_id",
                "author_id",
                "created_ts",
                "media_type",
                "hashtags",
                "popularity",
                "location_id",
                "location_name",
            ]
        ],
        deleted=frozenset(int(p) for p in (deleted[0] if deleted else [])),
    )
    return ServingSnapshot(
        loaded_at=datetime.now(UTC),
        clock=Clock(watermark.to_pydatetime(), time.monotonic(), serving.clock),
        posts=post_table,
        users=users,
        celebrities=celebrity_ids(users, settings),
        visibility=visibility,
        seen_posts=_pairs(seen, "viewer_id", "post_id"),
        stories=stories[["story_id", "author_id", "created_ts", "expires_ts"]],
        seen_stories=_pairs(seen_stories, "viewer_id", "story_id"),
        affinity={
            (int(v), int(a)): float(s)
            for v, a, s in affinity[["viewer_id", "author_id", "affinity_score"]].itertuples(
                index=False
            )
        },
        digests=digests,
        hashtags=hashtags,
        search=AutocompleteIndex.build(
            users["username"].astype(str).tolist(),
            users.index.tolist(),
            hashtags["hashtag"].astype(str).tolist(),
            hashtags["total_posts"].astype("int64").tolist(),
            users["follower_count"].astype("float64").tolist(),
        ),
        popular_rows=np.argsort(-post_table.popularity, kind="stable"),
        trending_rows=_trending_rows(post_table, hashtags),
        load_seconds=time.perf_counter() - started,
    )
