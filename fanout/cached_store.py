"""Redis as a read-through cache in front of a durable feed store (Cassandra): the seed's two tiers.

Reads: a cached feed is served from Redis alone (one pipelined round trip), so a read never waits on
Cassandra while the cache is warm, and keeps working while Cassandra is down. A miss reads the
whole feed from Cassandra, answers from it, and hands the fill to a background thread (writing
800 entries into a sorted set costs Redis several ms, which the reader should not wait for). The
fill happens only if the user's cache version has not moved since the read began
(compare-and-set in a script): a fan-out that lands between the Cassandra read and the fill
would otherwise be hidden behind a stale cached copy. Fills queue up to `fill_queue` deep; past
that a miss is not cached (the next read fills).

Writes: the durable store first, then the cache, and a call succeeds only when both did (the
fan-out consumer retries a batch and commits its offsets only then). The cache side is
idempotent and keyed on what Redis holds, not on what Cassandra reported: every entry of a push
is added to the user's cached feed if that feed is cached (ZADD of the same member is a no-op),
so a batch re-delivered after a Redis outage brings the cache up to date even though Cassandra
already had it. Feeds not cached are left alone (they fill on their next read). Removals and
whole-feed replacements invalidate (drop the cached feed, bump the version).

Versions live in Redis (bumped on every change the cache tier sees) and carry an epoch that is
created when missing, so a Redis that restarts empty never hands out a version seen before.

Redis down: reads go to Cassandra (flagged degraded only when slower than `read_budget_ms`),
writes fail (and are retried). Cassandra down: hits are served from Redis; a miss raises
FeedStoreUnavailable with `partial=True`, so the API falls back for that user only.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import msgpack
import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from fanout.cassandra_store import CassandraFeedStore
from fanout.redis_store import ZADD_ALL_LUA
from fanout.store import FeedEntry, FeedStore, FeedStoreUnavailable, Push, decode_member

T = TypeVar("T")

_EPOCH = """
local function epoch(prefix, now)
  local value = redis.call('GET', prefix .. 'epoch')
  if not value then
    redis.call('SET', prefix .. 'epoch', now, 'NX')
    value = redis.call('GET', prefix .. 'epoch')
  end
  return value
end
"""

# ARGV = prefix, user, now -> {epoch, version}
_VERSION = (
    _EPOCH
    + """
return {epoch(ARGV[1], ARGV[3]), redis.call('GET', ARGV[1] .. 'version:' .. ARGV[2]) or '0'}
"""
)

# ARGV = prefix, user, expected version, ttl seconds, msgpack [score, member, ...] -> 1 if filled
_FILL = (
    ZADD_ALL_LUA
    + """
local prefix, user = ARGV[1], ARGV[2]
local v = redis.call('GET', prefix .. 'version:' .. user) or '0'
if v ~= ARGV[3] then return 0 end
local key = prefix .. 'feed:' .. user
redis.call('DEL', key)
local flat = cmsgpack.unpack(ARGV[5])
if #flat == 0 then return 0 end
zadd_all(key, flat)
redis.call('EXPIRE', key, tonumber(ARGV[4]))
return 1
"""
)

# ARGV = prefix, cap, msgpack [[user, changed (0/1), [score, member, ...]], ...] -> entries added
_PUSH = (
    ZADD_ALL_LUA
    + """
local prefix, cap = ARGV[1], tonumber(ARGV[2])
local total = 0
for _, item in ipairs(cmsgpack.unpack(ARGV[3])) do
  local key = prefix .. 'feed:' .. item[1]
  local added = 0
  if redis.call('EXISTS', key) == 1 then
    added = zadd_all(key, item[3])
    if added > 0 then redis.call('ZREMRANGEBYRANK', key, 0, -cap - 1) end
  end
  if added > 0 or item[2] == 1 then redis.call('INCR', prefix .. 'version:' .. item[1]) end
  total = total + added
end
return total
"""
)

# ARGV = prefix, user, user, ... : drop the cached feeds and bump their versions
_INVALIDATE = """
for i = 2, #ARGV do
  redis.call('DEL', ARGV[1] .. 'feed:' .. ARGV[i])
  redis.call('INCR', ARGV[1] .. 'version:' .. ARGV[i])
end
return #ARGV - 1
"""

_USERS_PER_CALL = 2_000  # keeps each script call (and its time holding Redis) short


class CachedFeedStore(FeedStore):
    """`durable` (Cassandra) behind a Redis cache at `cache_url`; see the module docstring."""

    def __init__(
        self,
        durable: CassandraFeedStore,
        cache_url: str,
        *,
        prefix: str = "feeds:",
        ttl_seconds: int = 3600,
        read_budget_ms: float = 20.0,
        retry_seconds: float = 2.0,
        connect_timeout: float = 0.5,
        timeout: float = 2.0,
        fill_queue: int = 1024,
    ) -> None:
        self.durable = durable
        self.max_length = durable.max_length
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.read_budget_ms = read_budget_ms
        self.retry_seconds = retry_seconds
        self._redis = redis.Redis.from_url(
            cache_url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_error=[],
        )
        self._version = self._redis.register_script(_VERSION)
        self._fill = self._redis.register_script(_FILL)
        self._push = self._redis.register_script(_PUSH)
        self._invalidate = self._redis.register_script(_INVALIDATE)
        self._down_until = 0.0
        self._down_reason = ""
        self._lock = threading.Lock()
        self.stats = {"hits": 0, "misses": 0, "fills": 0, "cache_down_reads": 0, "fills_dropped": 0}
        self._stats_lock = threading.Lock()  # request threads and the fill thread both count
        self._fills: queue.Queue[tuple[int, bytes, list[FeedEntry]] | None] = queue.Queue(
            fill_queue
        )
        self._filler: threading.Thread | None = None

    # --- fills off the read path --------------------------------------------------------------

    def _queue_fill(self, user_id: int, version: bytes, entries: list[FeedEntry]) -> None:
        with self._lock:
            if self._filler is None or not self._filler.is_alive():
                self._filler = threading.Thread(
                    target=self._fill_loop, name="feed-cache-fill", daemon=True
                )
                self._filler.start()
        try:
            self._fills.put_nowait((user_id, version, entries))
        except queue.Full:
            self._count("fills_dropped")

    def _fill_loop(self) -> None:
        while (job := self._fills.get()) is not None:
            try:
                self._count("fills", self._cache(functools.partial(self._fill_one, *job)))
            except FeedStoreUnavailable:
                pass  # served from Cassandra all the same; the next read fills
            finally:
                self._fills.task_done()
        self._fills.task_done()

    def _count(self, name: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[name] += n

    def _fill_one(self, user_id: int, version: bytes, entries: list[FeedEntry]) -> int:
        flat = [v for e in entries for v in (str(e.created_ms), e.member)]
        return int(
            self._fill(args=[self.prefix, user_id, version, self.ttl_seconds, msgpack.packb(flat)])
        )

    def wait_for_fills(self) -> None:
        """Block until every queued fill ran (tests, benchmarks, shutdown)."""
        self._fills.join()

    # --- the cache tier's circuit breaker -----------------------------------------------------

    def _cache(self, fn: Callable[[], T]) -> T:
        """Call Redis unless it failed within `retry_seconds` (then fail at once)."""
        if time.monotonic() < self._down_until:
            raise FeedStoreUnavailable(self._down_reason)
        try:
            return fn()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            with self._lock:
                self._down_until = time.monotonic() + self.retry_seconds
                self._down_reason = f"Redis feed cache unreachable: {exc}"
            raise FeedStoreUnavailable(self._down_reason) from exc

    @staticmethod
    def _epoch_version(epoch: bytes, version: bytes) -> int:
        return (int(epoch) << 32) | int(version)

    # --- reads --------------------------------------------------------------------------------

    def read(self, user_id: int, limit: int, max_created_ms: int | None = None) -> list[FeedEntry]:
        return self.read_with_status(user_id, limit, max_created_ms)[0]

    def read_with_status(
        self, user_id: int, limit: int, max_created_ms: int | None = None
    ) -> tuple[list[FeedEntry], str | None]:
        """The entries, and why the answer is degraded (None when it is not)."""
        limit = min(limit, self.max_length)
        if limit <= 0:
            return [], None
        top: int | str = "+inf" if max_created_ms is None else int(max_created_ms)
        key = f"{self.prefix}feed:{user_id}"

        def cached_read() -> list[Any]:
            """The version and the cached feed in one round trip, without a script (a hit
            costs what the Redis-only design's read did). Empty feeds are never cached, so
            no rows means a miss (or nothing at or before `max_created_ms`: read through)."""
            pipe = self._redis.pipeline(transaction=False)
            pipe.get(f"{self.prefix}version:{user_id}")
            pipe.zrevrangebyscore(key, top, "-inf", start=0, num=limit, withscores=True)
            return pipe.execute()

        try:
            version, rows = self._cache(cached_read)
        except FeedStoreUnavailable as exc:
            self._count("cache_down_reads")
            return self._read_durable(user_id, limit, max_created_ms, str(exc))
        if rows:
            self._count("hits")
            return [decode_member(member, score) for member, score in rows], None
        version = version or b"0"
        self._count("misses")
        try:
            entries = self.durable.read(user_id, self.max_length)
        except FeedStoreUnavailable as exc:
            raise FeedStoreUnavailable(
                f"feed of user {user_id} not cached and {exc}", partial=True
            ) from exc
        if entries:  # empty feeds are never cached
            self._queue_fill(user_id, version, entries)
        return _window(entries, limit, max_created_ms), None

    def _read_durable(
        self, user_id: int, limit: int, max_created_ms: int | None, cache_error: str
    ) -> tuple[list[FeedEntry], str | None]:
        started = time.perf_counter()
        entries = self.durable.read(user_id, limit, max_created_ms)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if elapsed_ms <= self.read_budget_ms:
            return entries, None
        return entries, (
            f"{cache_error}; served from Cassandra in {elapsed_ms:.0f} ms"
            f" (budget {self.read_budget_ms:g} ms)"
        )

    def version(self, user_id: int) -> int:
        try:
            epoch, version = self._cache(
                lambda: self._version(args=[self.prefix, user_id, int(time.time())])
            )
        except FeedStoreUnavailable:
            return self.durable.version(user_id)
        return self._epoch_version(epoch, version)

    def length(self, user_id: int) -> int:
        return len(self.read(user_id, self.max_length))

    # --- writes: durable first, then the cache; both or an error ------------------------------

    def push_many(self, entries: Iterable[Push | tuple[int, int, int, int]]) -> int:
        by_user: dict[int, list[tuple[int, str, int, int]]] = {}
        for user_id, post_id, author_id, created_ms in entries:
            row = (int(created_ms), f"{post_id}:{author_id}", int(post_id), int(author_id))
            by_user.setdefault(int(user_id), []).append(row)
        return self._push_rows(by_user)

    def push_posts(self, posts: Iterable[tuple[int, int, int, Sequence[int]]]) -> int:
        by_user: dict[int, list[tuple[int, str, int, int]]] = {}
        for post_id, author_id, created_ms, users in posts:
            row = (int(created_ms), f"{post_id}:{author_id}", int(post_id), int(author_id))
            for user_id in users:
                rows = by_user.get(user_id)
                if rows is None:
                    by_user[user_id] = [row]
                else:
                    rows.append(row)
        return self._push_rows(by_user)

    def _push_rows(self, by_user: Mapping[int, list[tuple[int, str, int, int]]]) -> int:
        if not by_user:
            return 0
        added, changed = self.durable.push_rows(by_user)
        # ids and scores travel as strings: Lua numbers are doubles, and big ids would be
        # printed as 1.2e+14 in the key names
        items = [
            (str(u), int(u in changed), [v for r in rows for v in (str(r[0]), r[1])])
            for u, rows in by_user.items()
        ]

        def run() -> None:
            pipe = self._redis.pipeline(transaction=False)
            for start in range(0, len(items), _USERS_PER_CALL):
                blob = msgpack.packb(items[start : start + _USERS_PER_CALL])
                self._push(args=[self.prefix, self.max_length, blob], client=pipe)
            pipe.execute()

        self._cache_write(run)
        return added

    def _cache_write(self, run: Callable[[], None]) -> None:
        try:
            self._cache(run)
        except FeedStoreUnavailable as exc:
            raise FeedStoreUnavailable(
                f"written to Cassandra but not to the cache, retry: {exc}"
            ) from exc

    def _invalidate_users(self, users: Iterable[int]) -> None:
        ids = list(dict.fromkeys(int(u) for u in users))
        if not ids:
            return

        def run() -> None:
            pipe = self._redis.pipeline(transaction=False)
            for start in range(0, len(ids), _USERS_PER_CALL):
                self._invalidate(
                    args=[self.prefix, *ids[start : start + _USERS_PER_CALL]], client=pipe
                )
            pipe.execute()

        self._cache_write(run)

    def replace_many(self, feeds: Mapping[int, Iterable[FeedEntry]]) -> int:
        materialized = {int(u): list(entries) for u, entries in feeds.items()}
        kept = self.durable.replace_many(materialized)
        self._invalidate_users(materialized)
        return kept

    def remove_post(self, post_id: int, author_id: int, follower_ids: Iterable[int]) -> int:
        followers = list(follower_ids)
        removed = self.durable.remove_post(post_id, author_id, followers)
        self._invalidate_users(followers)
        return removed

    def remove_author(self, user_id: int, author_id: int) -> int:
        removed = self.durable.remove_author(user_id, author_id)
        self._invalidate_users([user_id])
        return removed

    # --- housekeeping -------------------------------------------------------------------------

    def ping(self) -> None:
        """Up when either tier answers (a dead tier alone is a degraded, not a dead, store)."""
        errors = []
        for tier in (lambda: self._cache(self._redis.ping), self.durable.ping):
            try:
                tier()
                return
            except FeedStoreUnavailable as exc:
                errors.append(str(exc))
        raise FeedStoreUnavailable("; ".join(errors))

    def clear_cache(self) -> None:
        """Delete every cached key under this prefix (versions included)."""

        def run() -> None:
            batch = list(self._redis.scan_iter(match=f"{self.prefix}*", count=1000))
            for start in range(0, len(batch), 1000):
                self._redis.delete(*batch[start : start + 1000])

        self._cache(run)

    def clear(self) -> None:
        self.clear_cache()
        self.durable.clear()

    def close(self) -> None:
        if self._filler is not None and self._filler.is_alive():
            try:
                self._fills.put(None, timeout=5)
                self._filler.join(timeout=5)
            except queue.Full:
                pass  # a daemon thread: it ends with the process
        self._filler = None
        self._redis.close()
        self.durable.close()


def _window(entries: list[FeedEntry], limit: int, max_created_ms: int | None) -> list[FeedEntry]:
    if max_created_ms is not None:
        entries = [e for e in entries if e.created_ms <= max_created_ms]
    return entries[:limit]
