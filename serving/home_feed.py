"""The home feed read path: candidates -> privacy -> rules -> online features -> ranker ->
author spread -> a ranked snapshot, cached per user and paged by cursor.

A ranked snapshot is reused for `cache_ttl_seconds` while the user's feed version in the feed
store is unchanged (a push bumps it, so a new post shows on the next first page). Cursors point
into the snapshot they started from, so paging never repeats or skips a post even when a newer
snapshot replaces it for fresh requests.
"""

import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from experiments.interleaving import seed_of
from ml.ranking.columns import ColumnTable, Table, take_rows
from serving.candidates import Candidates, CandidateSources
from serving.cursor import Cursor, CursorCodec
from serving.experiment_routing import Routed
from serving.exploration import explore
from serving.features import FeatureReaders
from serving.model_loading import ModelHolder, RecencyPopularityScorer
from serving.privacy import visible_rows
from serving.rules import first_occurrences, keep_mask, spread_authors
from serving.scoring import score
from serving.snapshot import ServingSnapshot
from serving.stages import stage

log = logging.getLogger(__name__)
RECENCY = RecencyPopularityScorer()


class CursorExpired(LookupError):
    """The snapshot a cursor points into is gone (older than the cursor ttl)."""


@dataclass
class RankedFeed:
    snapshot_id: str
    user_id: int
    post_ids: np.ndarray
    author_ids: np.ndarray
    created_ts: np.ndarray
    scores: np.ndarray
    sources: np.ndarray
    frame: Table | None  # feature rows as scored (for explain), None if unranked
    model_version: str
    feed_version: int | None
    built_at: float = field(default_factory=time.monotonic)
    degraded: bool = False
    reasons: list[str] = field(default_factory=list)
    candidates: int = 0  # gathered, before filtering
    ranked: int = 0  # scored after the filters
    # the rows of `frame` in ranked order (reordering the whole frame per build cost ~2 ms)
    frame_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="int64"))
    experiment: str | None = None  # the online experiment and arm that chose the ranker
    arm: str | None = None
    arms: np.ndarray | None = None  # interleaving: per item, the arm whose ranker placed it
    explored: np.ndarray | None = None  # per item: drawn at random (serving.exploration)


@dataclass
class FeedPage:
    feed: RankedFeed
    start: int
    stop: int
    next_cursor: str | None
    cached: bool
    contributions: list[dict[str, float]] | None = None
    rows: list[int] | None = None  # the rows shown (start..stop minus what became hidden)


class _Lru:
    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[object, RankedFeed] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: object) -> RankedFeed | None:
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: object, value: RankedFeed) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


class FeedService:
    def __init__(
        self,
        sources: CandidateSources,
        features: FeatureReaders | None,
        models: ModelHolder,
        codec: CursorCodec,
        *,
        cache_ttl: float,
        cursor_ttl: float,
        snapshot_size: int,
        fresh_hours: float,
        max_run: int,
        max_users: int,
        max_candidates: int = 1_000,
        explore_share: float = 0.0,
    ) -> None:
        self.sources = sources
        self.features = features
        self.models = models
        self.codec = codec
        self.cache_ttl = cache_ttl
        self.cursor_ttl = cursor_ttl
        self.snapshot_size = snapshot_size
        self.fresh_seconds = fresh_hours * 3600.0
        self.max_run = max_run
        self.max_candidates = max_candidates
        self.explore_share = explore_share  # serving.exploration: random eligible slots
        self.latest = _Lru(max_users)  # user -> the snapshot fresh requests get
        self.snapshots = _Lru(max_users * 2)  # snapshot id -> snapshot (cursor pages)

    # --- caching -------------------------------------------------------------------------------

    def cached(
        self, user_id: int, feed_version: int | None, routed: Routed | None = None
    ) -> RankedFeed | None:
        feed = self.latest.get(user_id)
        if feed is None or time.monotonic() - feed.built_at > self.cache_ttl:
            return None
        if feed.degraded or feed.feed_version != feed_version:
            return None
        version = routed.version if routed is not None else self.models.version
        if feed.model_version != version and feed.frame is not None:
            return None  # a new champion re-ranks on the next request
        if routed is not None and (feed.experiment, feed.arm) != (routed.experiment, routed.arm):
            return None  # an experiment started or stopped: rank with the model now assigned
        return feed

    def invalidate(self) -> None:
        self.latest.clear()

    def page(
        self,
        feed: RankedFeed,
        start: int,
        limit: int,
        cached: bool,
        snapshot: ServingSnapshot | None = None,
    ) -> FeedPage:
        """With `snapshot`, every item is re-checked against its current visibility graph
        (changes since the feed was ranked are honoured; hidden items are skipped)."""
        rows = None
        if snapshot is None:
            stop = min(start + limit, len(feed.post_ids))
        else:
            rows, stop = visible_rows(
                snapshot, feed.user_id, feed.post_ids, feed.author_ids, start, limit
            )
        next_cursor = None
        if stop < len(feed.post_ids):
            next_cursor = self.codec.encode(Cursor(feed.snapshot_id, feed.user_id, stop))
        return FeedPage(feed, start, stop, next_cursor, cached, rows=rows)

    def resume(self, cursor: Cursor) -> RankedFeed:
        feed = self.snapshots.get(cursor.snapshot_id)
        if feed is None or time.monotonic() - feed.built_at > self.cursor_ttl:
            raise CursorExpired("this cursor's feed snapshot expired: request the first page again")
        return feed

    # --- building -------------------------------------------------------------------------------

    def build(
        self, snapshot: ServingSnapshot, user_id: int, routed: Routed | None = None
    ) -> RankedFeed:
        """Rank the user's feed with the champion, or with `routed`'s arm model."""
        now = snapshot.clock.now()
        now_ts = now.timestamp()
        with stage("feed", "candidates"):
            found = self.sources.gather(snapshot, user_id, now_ts)
        total = len(found)
        with stage("feed", "visibility"):
            kept = self.filter(snapshot, user_id, found, now_ts)
        reasons = list(found.reasons)
        scorer = (routed.models if routed is not None else self.models).scorer
        frame: Table | None = None
        degraded = found.degraded
        if len(kept) and self.features is not None and not degraded:
            try:
                with stage("feed", "features"):
                    frame = self.features.ranking_columns(
                        user_id, kept.post_ids, kept.author_ids, now, "home_feed"
                    )
                scores = score(scorer, frame, "feed")
            except Exception as exc:  # online store down or model failure: rank by recency
                log.warning("feed of %s ranked by recency: %s", user_id, exc)
                degraded, frame = True, None
                reasons.append(f"ranking unavailable ({type(exc).__name__}): recency-ranked")
        if frame is None:
            scorer = RECENCY
            ages = (now_ts - kept.created_ts) / 3600.0
            frame = pd.DataFrame({RECENCY.feature_names[0]: ages})
            scores = score(RECENCY, frame, "feed")
        with stage("feed", "rules"):
            order = np.argsort(-scores, kind="stable")
            order = spread_authors(order, kept.author_ids, self.max_run)[: self.snapshot_size]
        snapshot_id = uuid.uuid4().hex[:16]
        explored: np.ndarray | None = None
        if self.explore_share > 0 and not (routed is not None and routed.interleaved):
            # not in an interleaving: its credit goes to the arm that placed each item
            rng = np.random.default_rng(seed_of("explore", user_id, snapshot_id))
            order, explored = explore(order, len(kept), self.explore_share, rng)
        experiment = routed.experiment if routed is not None else None
        arm = routed.arm if routed is not None else None
        arms: np.ndarray | None = None
        version = scorer.version
        ranked_scores = np.asarray(scores)[order]
        if routed is not None and routed.partner is not None:
            scores_b = None
            if not degraded:
                try:
                    scores_b = np.asarray(score(routed.partner.scorer, frame, "feed"))
                except Exception as exc:  # the second ranker failed: the first one's feed
                    log.warning("interleaving of %s: second ranker failed: %s", user_id, exc)
                    reasons.append(f"interleaving unavailable ({type(exc).__name__})")
            if scores_b is None:  # not ranked by both: no impression of the experiment
                experiment = None
            else:
                with stage("feed", "rules"):
                    order_b = np.argsort(-scores_b, kind="stable")
                    order_b = spread_authors(order_b, kept.author_ids, self.max_run)
                    order, arms = routed.interleave(
                        order, order_b, self.snapshot_size, user_id, snapshot_id
                    )
                mine = arms == routed.arms[0] if routed.arms else np.ones(len(order), bool)
                ranked_scores = np.where(mine, np.asarray(scores)[order], scores_b[order])
                version = routed.version
        if isinstance(frame, ColumnTable):  # kept for explain: not the reader's entity rows
            frame.blocks = {}
        feed = RankedFeed(
            snapshot_id=snapshot_id,
            user_id=user_id,
            post_ids=kept.post_ids[order],
            author_ids=kept.author_ids[order],
            created_ts=kept.created_ts[order],
            scores=ranked_scores,
            sources=kept.sources[order],
            frame=frame,
            frame_rows=order,
            model_version=version,
            feed_version=found.feed_version,
            degraded=degraded,
            reasons=reasons,
            candidates=total,
            ranked=len(kept),
            experiment=experiment,
            arm=arm,
            arms=arms,
            explored=explored,
        )
        self.latest.put(user_id, feed)
        self.snapshots.put(feed.snapshot_id, feed)
        return feed

    def filter(
        self, snapshot: ServingSnapshot, user_id: int, found: Candidates, now_ts: float
    ) -> Candidates:
        """Drop duplicates, posts the viewer may not see, deleted, seen and stale posts."""
        if len(found) == 0:
            return found
        found = found.take(first_occurrences(found.post_ids))
        visible = snapshot.visibility.visible_posts_mask(user_id, found.post_ids, found.author_ids)
        excluded = snapshot.posts.deleted | snapshot.seen_posts.get(user_id, frozenset())
        fresh = keep_mask(
            found.post_ids,
            found.created_ts,
            now_ts=now_ts,
            fresh_seconds=self.fresh_seconds,
            excluded=excluded,
        )
        own = found.author_ids == user_id  # one's own posts are not in one's home feed
        kept = np.flatnonzero(visible & fresh & ~own)
        return found.take(kept[: self.max_candidates])  # sources come in priority order

    def explain(self, feed: RankedFeed, start: int, stop: int) -> list[dict[str, float]]:
        if feed.frame is None or stop <= start:
            return []
        rows = take_rows(feed.frame, feed.frame_rows[start:stop])
        scorer = self.models.scorer if feed.model_version == self.models.version else RECENCY
        if feed.model_version == RECENCY.version:
            scorer = RECENCY
        if scorer.version != feed.model_version:
            return [{} for _ in range(stop - start)]  # the model that ranked it is gone
        table = scorer.explain(rows)
        return [
            {k: round(float(v), 6) for k, v in row.items() if v == v and abs(v) > 1e-9}
            for row in table.to_dict(orient="records")
        ]
