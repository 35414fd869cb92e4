"""Everything the API serves from, built once in `lifespan` and refreshed in the background.

`ServingState.start()` loads the serving snapshot (then closes ClickHouse), opens the feed store
and the online feature readers, and asks the registry for the champion ranker. Two background
loops keep it current: the model alias (every `model_reload_seconds`) and the snapshot (every
`snapshot_refresh_seconds`); both keep the last good state when a refresh fails.
"""

import asyncio
import fcntl
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from appconfig import Settings
from fanout import FeedStore, open_feed_store
from serving import suggestion_gate
from serving.candidates import CandidateSources
from serving.cursor import CursorCodec
from serving.experiment_routing import ExperimentRouter, mlflow_model_lookup
from serving.features import FeatureReaders
from serving.home_feed import FeedService
from serving.model_loading import ModelHolder, mlflow_holder
from serving.recommenders import Recommenders
from serving.settings import ServingSettings
from serving.snapshot import ServingSnapshot, load_snapshot
from serving.visibility_follower import KafkaFollower, LandingFollower, VisibilityChanges

log = logging.getLogger(__name__)
MODERATION_POLL_SECONDS = 0.5  # listing the decisions' prefix when nothing new came


@contextmanager
def snapshot_load_lock(settings: Settings) -> Iterator[None]:
    """Workers of one server read the snapshot one at a time: embedded ClickHouse (chDB) lets one
    process open its directory at once (a file lock beside the data; nothing for a server)."""
    if not settings.clickhouse_url.startswith("chdb:"):
        yield
        return
    path = Path(settings.data_dir) / ".serving-snapshot.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class ServingState:
    settings: Settings
    serving: ServingSettings
    models: ModelHolder
    snapshot: ServingSnapshot | None = None
    features: FeatureReaders | None = None
    feed_store: FeedStore | None = None
    home_feed: FeedService | None = None  # builds, caches and pages home feeds (home_feed.py)
    recommenders: Recommenders | None = None
    tokens: dict[str, frozenset[str]] = field(default_factory=dict)  # token -> its scopes
    errors: dict[str, str] = field(default_factory=dict)  # component -> why it is not loaded
    changes: VisibilityChanges | None = None
    followers: list[Any] = field(default_factory=list)  # the change sources' threads
    snapshot_error: str | None = None
    experiments: ExperimentRouter | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _reload_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(
        cls,
        settings: Settings,
        serving: ServingSettings,
        models: ModelHolder | None = None,
        arm_models: Mapping[str, ModelHolder] | None = None,
    ) -> "ServingState":
        """`models` and `arm_models` (experiment arms' models by reference) replace the MLflow
        registry (tests)."""
        serving = serving.with_tokens_for(settings.profile)
        if models is None or arm_models is None:
            from ml.tracking import tracking_uri

            uri = tracking_uri(settings)
            if models is None:
                models = mlflow_holder(uri, serving.ranker_model_name, serving.ranker_alias)
        holder_for: Callable[[str], ModelHolder]
        known: Callable[[str], bool]
        if arm_models is not None:
            table = dict(arm_models)
            holder_for, known = table.__getitem__, lambda model: model in table
        else:
            holder_for, known = mlflow_model_lookup(uri)
        state = cls(settings, serving, models, tokens=serving.token_scopes())
        state.changes = VisibilityChanges(state)
        state.experiments = ExperimentRouter(
            Path(settings.experiments_dir), models, holder_for, known
        )
        return state

    def knows_user(self, user_id: int) -> bool:
        """A user signed up since the snapshot (seen by the change follower)."""
        return self.changes is not None and self.changes.knows_user(user_id)

    # --- loading --------------------------------------------------------------------------------

    def load(self) -> None:
        """Blocking start-up: snapshot, stores, readers, model (each failure recorded)."""
        self.reload_snapshot()
        try:
            self.feed_store = open_feed_store(self.settings, prefix=self.serving.feed_store_prefix)
        except Exception as exc:
            self.errors["feed_store"] = type(exc).__name__
            log.warning("feed store unavailable: %s", exc)
        try:
            from featurestore.config import feature_store

            self.features = FeatureReaders.open(feature_store(self.settings))
        except Exception as exc:
            self.errors["features"] = type(exc).__name__
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
        self.home_feed = FeedService(
            sources,
            self.features,
            self.models,
            CursorCodec(self.cursor_key()),
            cache_ttl=serving.cache_ttl_seconds,
            cursor_ttl=serving.cursor_ttl_seconds,
            snapshot_size=serving.feed_snapshot_size,
            explore_share=serving.feed_explore_share,
            fresh_hours=self.settings.feed_window_hours,
            max_run=serving.max_consecutive_per_author,
            max_users=serving.max_cached_users,
            max_candidates=serving.feed_candidates,
        )

    def refresh_models(self) -> None:
        """The champion's alias, then every experiment arm's."""
        self.models.refresh()
        if self.experiments is not None:
            self.experiments.refresh_models()

    def cursor_key(self) -> bytes:
        """SERVING_CURSOR_SECRET when set (shared by workers), else a key of this process."""
        secret = self.serving.cursor_secret.get_secret_value()
        return secret.encode() if secret else secrets.token_bytes(32)

    def explore_posts(self, snapshot: ServingSnapshot, user_id: int, k: int) -> list[int]:
        """The current Explore model's posts (looked up per call: /admin/reload replaces it)."""
        if self.recommenders is None:
            raise LookupError("no recommenders loaded")
        return self.recommenders.explore_posts(snapshot, user_id, k)

    def reload_snapshot(self) -> bool:
        """Re-read the snapshot from ClickHouse; on failure keep serving the previous one."""
        with self._reload_lock:
            try:
                with snapshot_load_lock(self.settings):
                    snapshot = load_snapshot(self.settings, self.serving)
            except Exception as exc:
                self.snapshot_error = type(exc).__name__  # the text may hold a DSN: logged only
                log.error("snapshot load failed (keeping the previous one): %s", exc)
                return False
            if self.changes is not None:  # changes streamed since the marts were built
                replayed = self.changes.replay_onto(snapshot.visibility, snapshot.knows_user)
                log.info("replayed %d streamed visibility changes onto the snapshot", replayed)
            self.snapshot = snapshot
            self.snapshot_error = None
            suggestion_gate.warm(snapshot)  # hashtag/location gate decided off the request path
            if self.home_feed is not None:
                self.home_feed.invalidate()
            log.info("serving snapshot loaded in %.2f s", snapshot.load_seconds)
            return True

    @property
    def ready(self) -> bool:
        return self.snapshot is not None and self.home_feed is not None

    # --- background refresh ---------------------------------------------------------------------

    def start_followers(self) -> None:
        """Follow visibility changes: Kafka when a broker is configured, else the landing
        zone. A source that cannot start is reported on /readyz; the API still serves."""
        assert self.changes is not None
        try:
            if self.settings.kafka_bootstrap_servers:
                follower: Any = KafkaFollower(
                    self.changes,
                    self.settings.kafka_bootstrap_servers,
                    self.serving.change_topics,
                )
            else:
                from objectstore.store import store_from_settings

                follower = LandingFollower(
                    self.changes, store_from_settings(self.settings), self.settings.landing_prefix
                )
        except Exception as exc:
            self.errors["visibility_follower"] = type(exc).__name__
            log.error("visibility change follower did not start: %s", exc)
            return
        follower.start()
        self.followers.append(follower)
        try:  # moderation decisions: files in the object store in both profiles
            from objectstore.store import store_from_settings

            decisions = LandingFollower(
                self.changes,
                store_from_settings(self.settings),
                self.settings.moderation_decisions_prefix,
                poll_seconds=MODERATION_POLL_SECONDS,
            )
        except Exception as exc:
            self.errors["moderation_follower"] = type(exc).__name__
            log.error("moderation decision follower did not start: %s", exc)
            return
        decisions.start()
        self.followers.append(decisions)

    def start_background(self) -> None:
        if self.serving.follow_changes:
            self.start_followers()
        self._tasks.append(
            asyncio.create_task(self._every(self.serving.model_reload_seconds, self.refresh_models))
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
        for follower in self.followers:
            await run_in_threadpool(follower.stop)
        self.followers.clear()
        if self.features is not None:
            self.features.close()
        if self.feed_store is not None:
            self.feed_store.close()
