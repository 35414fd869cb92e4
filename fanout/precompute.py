"""Precomputed home feeds: each user's candidates from the non-celebrity authors they follow.

This is the batch side of push: it rebuilds every feed from the marts, so feeds are right even
where the stream missed something (a consumer that was down, a follow that needs a backfill).
Celebrities' posts are left out; readers pull them (`fanout.pull`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fanout.fanout import CelebrityPolicy, to_ms
from fanout.pull import newest_post_at
from fanout.store import FeedEntry, FeedStore

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from appconfig import Settings
    from visibility import VisibilityGraph

USERS_PER_WRITE = 500


@dataclass
class FeedSnapshot:
    """What a precompute reads from the warehouse, in memory (no client held afterwards)."""

    users: np.ndarray  # every user in dim_users
    celebrities: set[int]
    graph: VisibilityGraph
    posts: pd.DataFrame  # post_id, author_id, created_ms: recent, non-deleted, non-celebrity
    as_of: datetime | None


@dataclass
class PrecomputeReport:
    users_written: int = 0
    entries: int = 0
    celebrity_authors_skipped: int = 0
    posts_considered: int = 0
    withheld_by_privacy: int = 0
    as_of: datetime | None = None
    lengths: list[int] = field(default_factory=list)


def load_snapshot(
    client: Client, settings: Settings, *, as_of: datetime | None = None
) -> FeedSnapshot:
    """Users, celebrities, the visibility graph and the window's posts from the marts."""
    from visibility import VisibilityGraph

    marts = settings.marts_database
    celebrities = CelebrityPolicy.from_settings(settings).load(client, settings)
    graph = VisibilityGraph.from_clickhouse(client, settings)
    users = np.array(
        [row[0] for row in client.query(f"select user_id from {marts}.dim_users").result_rows],
        dtype=np.int64,
    )
    as_of = as_of or newest_post_at(client, settings)
    posts = pd.DataFrame(columns=["post_id", "author_id", "created_ms"], dtype="int64")
    if as_of is not None:
        start = as_of - timedelta(hours=settings.feed_window_hours)
        posts = client.query_df(
            f"""
            select post_id, author_id,
                   toUnixTimestamp64Milli(toDateTime64(created_at, 3)) as created_ms
            from {marts}.dim_posts
            where not is_deleted and author_id not in {{celebrities:Array(Int64)}}
              and toUnixTimestamp64Milli(toDateTime64(created_at, 3))
                  between {{start_ms:Int64}} and {{end_ms:Int64}}
            """,
            parameters={
                "celebrities": sorted(celebrities),
                "start_ms": to_ms(start),
                "end_ms": to_ms(as_of),
            },
        ).astype("int64")
    return FeedSnapshot(users, celebrities, graph, posts, as_of)


def candidate_feeds(
    snapshot: FeedSnapshot, max_length: int
) -> tuple[dict[int, list[FeedEntry]], int]:
    """Each user's newest posts of followed, visible, non-celebrity authors (capped); and how
    many (user, post) pairs privacy withheld."""
    follows = snapshot.graph.follow_edges()
    follows = follows[~follows["followee_id"].isin(list(snapshot.celebrities))]
    pairs = follows.merge(snapshot.posts, left_on="followee_id", right_on="author_id", how="inner")
    feeds: dict[int, list[FeedEntry]] = {int(u): [] for u in snapshot.users}
    withheld = 0
    if pairs.empty:
        return feeds, withheld
    # newest first, ties as the stores break them (member string, descending)
    pairs["member"] = pairs["post_id"].astype(str) + ":" + pairs["author_id"].astype(str)
    pairs = pairs.sort_values(
        ["follower_id", "created_ms", "member"], ascending=[True, False, False]
    )
    for viewer, group in pairs.groupby("follower_id", sort=False):
        visible = snapshot.graph.visible_posts_mask(
            int(viewer),
            group["post_id"].to_numpy(),
            group["author_id"].to_numpy(),
        )
        withheld += int((~visible).sum())
        kept = group[visible].head(max_length)
        feeds[int(viewer)] = [
            FeedEntry(int(p), int(a), int(c))
            for p, a, c in zip(kept["post_id"], kept["author_id"], kept["created_ms"], strict=True)
        ]
    return feeds, withheld


def _chunks(feeds: dict[int, list[FeedEntry]], size: int) -> Iterator[dict[int, list[FeedEntry]]]:
    items = list(feeds.items())
    for start in range(0, len(items), size):
        yield dict(items[start : start + size])


def write_feeds(
    store: FeedStore,
    snapshot: FeedSnapshot,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> PrecomputeReport:
    """Replace every user's feed with its candidates; `progress(done, total)` after each write."""
    feeds, withheld = candidate_feeds(snapshot, store.max_length)
    report = PrecomputeReport(
        celebrity_authors_skipped=len(snapshot.celebrities),
        posts_considered=len(snapshot.posts),
        withheld_by_privacy=withheld,
        as_of=snapshot.as_of,
    )
    done = 0
    for chunk in _chunks(feeds, USERS_PER_WRITE):
        report.entries += store.replace_many(chunk)
        done += len(chunk)
        if progress:
            progress(done, len(feeds))
    report.users_written = len(feeds)
    report.lengths = [len(entries) for entries in feeds.values()]
    return report
