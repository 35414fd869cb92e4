"""The exploration slice: the configured share of feed slots is random, drawn only from the
candidates the viewer may see, and flagged on the item the client copies into its impression."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import numpy as np

from serving.candidates import Candidates
from serving.exploration import explore
from serving.home_feed import FeedPage, FeedService
from serving.routers.feed import feed_response

VIEWER = 1
BLOCKED_AUTHOR = 7  # the viewer blocked them: none of their posts may be shown
DELETED = frozenset({10, 11, 12})
SEEN = frozenset({20, 21})


def test_the_share_is_honoured_and_ranked_rows_keep_their_order() -> None:
    rng = np.random.default_rng(0)
    order = np.arange(40)[::-1].copy()  # the ranker's order over a pool of 100
    for share, expected in ((0.05, 2), (0.1, 4), (0.25, 10), (0.0, 0)):
        out, explored = explore(order, 100, share, rng)
        assert explored.sum() == expected and len(out) == len(order)
        assert len(set(out.tolist())) == len(out)  # nothing shown twice
        ranked = out[~explored]
        kept = order[np.isin(order, ranked)]
        assert np.array_equal(ranked, kept[: len(ranked)])  # the ranker's relative order
        assert set(out.tolist()) <= set(range(100))
    # a uniform draw over the pool: rows the ranker never placed show up, at every position
    outside, slots = 0, np.zeros(40)
    for _ in range(400):
        out, explored = explore(order, 100, 0.1, rng)
        outside += int((out[explored] >= 40).sum())
        slots += explored
    assert 0.5 < outside / (400 * 4) < 0.7  # 60 of the 100 rows are outside the ranked 40
    assert slots.min() > 0  # every position gets explored


class _Sources:
    def __init__(self, now: float) -> None:
        n = 200
        self.found = Candidates(
            post_ids=np.arange(1, n + 1, dtype=np.int64),
            author_ids=(np.arange(n, dtype=np.int64) % 40) + 2,
            created_ts=now - np.arange(n, dtype=np.float64) * 60.0,  # post 1 newest
            sources=np.array(["pushed"] * n, dtype=object),
            feed_version=1,
        )

    def gather(self, snapshot: Any, user_id: int, now_ts: float) -> Candidates:
        return self.found


def _snapshot(now: datetime) -> Any:
    def visible(user_id: int, post_ids: np.ndarray, author_ids: np.ndarray) -> np.ndarray:
        return np.asarray(author_ids != BLOCKED_AUTHOR)

    return SimpleNamespace(
        clock=SimpleNamespace(now=lambda: now),
        visibility=SimpleNamespace(visible_posts_mask=visible),
        posts=SimpleNamespace(deleted=DELETED),
        seen_posts={VIEWER: SEEN},
    )


def _service(share: float, now: datetime) -> FeedService:
    return FeedService(
        cast(Any, _Sources(now.timestamp())),
        None,  # no features: recency ranks, newest first
        cast(Any, SimpleNamespace(scorer=None)),
        cast(Any, None),
        cache_ttl=60,
        cursor_ttl=60,
        snapshot_size=50,
        fresh_hours=24,
        max_run=50,
        max_users=10,
        explore_share=share,
    )


def test_explored_feed_slots_come_only_from_posts_the_viewer_may_see() -> None:
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    snapshot = _snapshot(now)
    service = _service(0.1, now)
    hidden = {p for p in range(1, 201) if (p - 1) % 40 + 2 == BLOCKED_AUTHOR} | DELETED | SEEN
    ranked_only = _service(0.0, now).build(snapshot, VIEWER)
    assert ranked_only.explored is None
    top = set(ranked_only.post_ids.tolist())
    beyond = 0
    for _ in range(30):
        feed = service.build(snapshot, VIEWER)
        assert feed.explored is not None and int(feed.explored.sum()) == 5  # 10% of 50 slots
        shown = feed.post_ids.tolist()
        assert len(shown) == 50 and len(set(shown)) == 50
        assert not set(shown) & hidden  # privacy, deletions and seen posts hold for both kinds
        beyond += len(set(feed.post_ids[feed.explored].tolist()) - top)
    assert beyond > 0  # exploration reaches posts the ranker keeps out of the snapshot
    body = feed_response(FeedPage(feed, 0, 50, None, False), None)
    flags = [item["explored"] for item in body["items"]]
    assert feed.explored is not None and flags == feed.explored.tolist() and sum(flags) == 5
