"""Everything the API serves from, built once in `lifespan` and refreshed in the background.

`ServingState.start()` loads the serving snapshot (then closes ClickHouse), opens the feed store
and the online feature readers, and asks the registry for the champion ranker. Two background
loops keep it current: the model alias (every `model_reload_seconds`) and the snapshot (every
`snapshot_refresh_seconds`); both keep the last good state when a refresh fails.
"""

import asyncio
import logging
import secrets
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool

from appconfig import Settings
from feeds import FeedStore, open_feed_store
from serving.candidates import CandidateSources
from serving.cursor import CursorCodec
from serving.features import FeatureReaders
from serving.feed import FeedService
from serving.model_loading import ModelHolder, mlflow_holder
from serving.recommend import Recommenders
from serving.settings import ServingSettings
from serving.snapshot import ServingSnapshot, load_snapshot

log = logging.getLogger(__name__)


@dataclass
class ServingState:
    settings: Settings
    serving: ServingSettings
    models: ModelHolder
    snapshot: ServingSnapshot | None = None
    features: FeatureReaders | None = None
    feed_store: FeedStore | None = None
    feeds: FeedService | None = None
    recommenders: Recommenders | None = None
    tokens: frozenset[str] = frozenset()
    errors: dict[str, str] = field(default_factory=dict)  # component -> why it is not loaded
    snapshot_error: str | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _reload_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(
        cls, settings: Settings, serving: ServingSettings, models: ModelHolder | None = None
    ) -> "ServingState":
        serving = serving.with_tokens_for(settings.profile)
        if models is None:
            from ml.tracking import tracking_uri

            models = mlflow_holder(
                tracking_uri(settings), serving.ranker_model_name, serving.ranker_alias
            )
        return cls(settings, serving, models, tokens=serving.token_values())

    # --- loading --------------------------------------------------------------------------------

    def load(self) -> None:
        """Blocking start-up: snapshot, stores, readers, model (each failure recorded)."""
        self.reload_snapshot()
        try:
            self.feed_store = open_feed_store(self.settings, prefix=self.serving.feed_store_prefix)
        except Exception as exc:
            self.errors["feed_store"] = f"{type(exc).__name__}: {exc}"
        try:
            from featurestore.config import feature_store

            self.features = FeatureReaders.open(feature_store(self.settings))
        except Exception as exc:
            self.errors["features"] = f"{type(exc).__name__}: {exc}"
            log.warning("online features unavailable: %s", exc)
        self.recommenders = Recommenders.load(self.settings)
        self.models.refresh()
        serving = self.serving
        sources = CandidateSources(
            self.feed_store,
            pushed=serving.pushed_candidates,
            pulled_per_author=serving.pulled_per_celebrity,
            pulled=serving.pulled_candidates,
            explore=serving.explore_candidates,
            explore_posts=self.explore_posts,
            retry_seconds=serving.feed_store_retry_seconds,
        )
        self.feeds = FeedService(
            sources,
            self.features,
            self.models,
            CursorCodec(secrets.token_bytes(32)),
            cache_ttl=serving.cache_ttl_seconds,
            cursor_ttl=serving.cursor_ttl_seconds,
            snapshot_size=serving.feed_snapshot_size,
            fresh_hours=serving.fresh_hours,
            max_run=serving.max_consecutive_per_author,
            max_users=serving.max_cached_users,
            max_candidates=serving.feed_candidates,
        )

    def explore_posts(self, snapshot: ServingSnapshot, user_id: int, k: int) -> list[int]:
        """The current Explore model's posts (looked up per call: /admin/reload replaces it)."""
        if self.recommenders is None:
            raise LookupError("no recommenders loaded")
        return self.recommenders.explore_posts(snapshot, user_id, k)

    def reload_snapshot(self) -> bool:
        """Re-read the snapshot from ClickHouse; on failure keep serving the previous one."""
        with self._reload_lock:
            try:
                snapshot = load_snapshot(self.settings, self.serving)
            except Exception as exc:
                self.snapshot_error = f"{type(exc).__name__}: {exc}"
                log.error("snapshot load failed (keeping the previous one): %s", exc)
                return False
            self.snapshot = snapshot
            self.snapshot_error = None
            if self.feeds is not None:
                self.feeds.invalidate()
            log.info("serving snapshot loaded in %.2f s", snapshot.load_seconds)
            return True

    @property
    def ready(self) -> bool:
        return self.snapshot is not None and self.feeds is not None

    # --- background refresh ---------------------------------------------------------------------

    def start_background(self) -> None:
        self._tasks.append(
            asyncio.create_task(self._every(self.serving.model_reload_seconds, self.models.refresh))
        )
        if self.serving.snapshot_refresh_seconds > 0:
            self._tasks.append(
                asyncio.create_task(
                    self._every(self.serving.snapshot_refresh_seconds, self.reload_snapshot)
                )
            )

    async def _every(self, seconds: float, job: Any) -> None:
        while True:
            await asyncio.sleep(seconds)
            started = time.perf_counter()
            try:
                await run_in_threadpool(job)
            except Exception:  # a refresh must never kill its loop
                log.exception("background refresh %s failed", getattr(job, "__name__", job))
            log.debug(
                "%s took %.2f s", getattr(job, "__name__", job), time.perf_counter() - started
            )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.features is not None:
            self.features.close()
        if self.feed_store is not None:
            self.feed_store.close()
