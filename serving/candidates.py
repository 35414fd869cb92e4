"""Where a home feed's candidates come from (hybrid fan-out, read side).

- pushed: the user's precomputed feed in the feed store (ordinary authors, written at post time);
- pulled: recent posts of followed celebrities, never pushed, read from the serving snapshot;
- explore: a few posts from outside the follow graph (the Explore model, else popular posts);
- popular: what a brand-new user (no follows, nothing pushed) gets instead.

When the feed store is unreachable, every followed author is pulled from the snapshot instead
(the degraded path), so a feed still comes back.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from fanout import FeedStore, FeedStoreUnavailable
from serving.snapshot import ServingSnapshot

T = TypeVar("T")
PUSHED, PULLED, EXPLORE, POPULAR = "pushed", "pulled", "explore", "popular"


@dataclass
class Candidates:
    post_ids: np.ndarray
    author_ids: np.ndarray
    created_ts: np.ndarray
    sources: np.ndarray  # object array of the source names above
    feed_version: int | None = None
    degraded: bool = False
    reasons: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.post_ids)

    def take(self, mask_or_rows: np.ndarray) -> "Candidates":
        return Candidates(
            self.post_ids[mask_or_rows],
            self.author_ids[mask_or_rows],
            self.created_ts[mask_or_rows],
            self.sources[mask_or_rows],
            self.feed_version,
            self.degraded,
            list(self.reasons),
        )


def first_rows(rows: np.ndarray) -> np.ndarray:
    """Positions of the first occurrence of each row, in order."""
    _, first = np.unique(rows, return_index=True)
    return np.sort(first)


def _from_rows(snapshot: ServingSnapshot, rows: np.ndarray, source: str) -> Candidates:
    posts = snapshot.posts
    return Candidates(
        posts.post_ids[rows],
        posts.author_ids[rows],
        posts.created_ts[rows],
        np.full(len(rows), source, dtype=object),
    )


def concat(parts: list[Candidates]) -> Candidates:
    parts = [p for p in parts if len(p)] or parts[:1]
    if not parts:
        empty = np.zeros(0, dtype="int64")
        return Candidates(empty, empty, np.zeros(0), np.zeros(0, dtype=object))
    return Candidates(
        np.concatenate([p.post_ids for p in parts]).astype("int64"),
        np.concatenate([p.author_ids for p in parts]).astype("int64"),
        np.concatenate([p.created_ts for p in parts]).astype("float64"),
        np.concatenate([p.sources for p in parts]),
    )


class CandidateSources:
    def __init__(
        self,
        feed_store: FeedStore | None,
        *,
        pushed: int,
        pulled_per_author: int,
        pulled: int,
        explore: int,
        explore_posts: Callable[[ServingSnapshot, int, int], list[int]] | None = None,
        retry_seconds: float = 5.0,
    ) -> None:
        self.feed_store = feed_store
        self.pushed = pushed
        self.pulled_per_author = pulled_per_author
        self.pulled = pulled
        self.explore = explore
        self.explore_posts = explore_posts
        self.retry_seconds = retry_seconds
        self._down_until = 0.0
        self._down_reason = ""

    def _store(self) -> FeedStore:
        """The feed store, unless it failed in the last `retry_seconds` (a circuit breaker: a
        dead Redis costs one connect timeout per interval, not one per request)."""
        if self.feed_store is None:
            raise FeedStoreUnavailable("no feed store configured")
        if time.monotonic() < self._down_until:
            raise FeedStoreUnavailable(self._down_reason)
        return self.feed_store

    def _guard(self, call: Callable[[FeedStore], T]) -> T:
        store = self._store()
        try:
            return call(store)
        except FeedStoreUnavailable as exc:
            if exc.partial:  # this user's read only (a cache miss with its database down)
                raise
            self._down_until = time.monotonic() + self.retry_seconds
            self._down_reason = f"{exc} (retrying after {self.retry_seconds:g} s)"
            raise

    def feed_version(self, user_id: int) -> int | None:
        """The feed store's version of the user's feed; raises FeedStoreUnavailable."""
        if self.feed_store is None:
            return None
        return self._guard(lambda store: store.version(user_id))

    def pushed_posts(self, user_id: int, now_ts: float) -> Candidates:
        entries, degraded = self._guard(
            lambda store: store.read_with_status(
                user_id, self.pushed, max_created_ms=int(now_ts * 1000)
            )
        )
        found = Candidates(
            np.fromiter((e.post_id for e in entries), dtype="int64", count=len(entries)),
            np.fromiter((e.author_id for e in entries), dtype="int64", count=len(entries)),
            np.fromiter(
                (e.created_ms / 1000 for e in entries), dtype="float64", count=len(entries)
            ),
            np.full(len(entries), PUSHED, dtype=object),
        )
        if degraded:  # served, but by a slower tier than its budget allows
            found.degraded = True
            found.reasons.append(degraded)
        return found

    def pulled_posts(
        self, snapshot: ServingSnapshot, authors: set[int], now_ts: float, per_author: int, cap: int
    ) -> Candidates:
        """The newest posts of these authors (created up to now), newest first overall."""
        posts = snapshot.posts
        chunks = []
        for author in authors:
            rows = posts.by_author.get(author)
            if rows is not None:
                chunks.append(rows[posts.created_ts[rows] <= now_ts][:per_author])
        if not chunks:
            return _from_rows(snapshot, np.zeros(0, dtype="int64"), PULLED)
        rows = np.concatenate(chunks)
        rows = rows[np.argsort(-posts.created_ts[rows], kind="stable")][:cap]
        return _from_rows(snapshot, rows, PULLED)

    def outside_posts(
        self, snapshot: ServingSnapshot, user_id: int, count: int, now_ts: float, source: str
    ) -> Candidates:
        """Posts from beyond the follow graph: the Explore model's, else the most engaged."""
        if count <= 0:
            return _from_rows(snapshot, np.zeros(0, dtype="int64"), source)
        if self.explore_posts is not None and source == EXPLORE:
            try:
                rows = snapshot.posts.rows_of(self.explore_posts(snapshot, user_id, count))
                return _from_rows(snapshot, rows, source)
            except Exception:  # a recommender failure only costs the explore slots
                pass
        rows = snapshot.popular_rows
        if source == POPULAR:  # a new user: the most engaged and the trending, interleaved
            rows = np.ravel(np.column_stack([rows, snapshot.trending_rows[: len(rows)]]))
            rows = rows[first_rows(rows)] if len(rows) else rows
        rows = rows[snapshot.posts.created_ts[rows] <= now_ts][: count * 3]
        return _from_rows(snapshot, rows, source)

    def gather(self, snapshot: ServingSnapshot, user_id: int, now_ts: float) -> Candidates:
        following = snapshot.follows(user_id)
        celebrities = following & snapshot.celebrities
        parts: list[Candidates] = []
        degraded, reasons = False, []
        version: int | None = None
        try:
            version = self.feed_version(user_id)
            pushed = self.pushed_posts(user_id, now_ts)
            parts.append(pushed)
            degraded = pushed.degraded
            reasons += pushed.reasons
            pull_authors = celebrities
            if len(pushed) == 0 and following:
                pull_authors = following  # no precomputed feed yet: pull everyone followed
                reasons.append("no precomputed feed: pulled from followed accounts")
        except FeedStoreUnavailable as exc:
            degraded = True
            reasons.append(f"feed store unavailable ({exc}): pull-only feed")
            pull_authors = following
        per_author = max(self.pulled_per_author, 1)
        cap = self.pulled if pull_authors is celebrities else self.pushed + self.pulled
        parts.append(self.pulled_posts(snapshot, pull_authors, now_ts, per_author, cap))
        if not following and sum(len(p) for p in parts) == 0:
            parts.append(self.outside_posts(snapshot, user_id, self.pushed, now_ts, POPULAR))
            reasons.append("new user: popular and trending posts")
        else:
            parts.append(self.outside_posts(snapshot, user_id, self.explore, now_ts, EXPLORE))
        merged = concat(parts)
        merged.feed_version = version
        merged.degraded = degraded
        merged.reasons = reasons
        return merged
