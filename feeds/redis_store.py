"""Feeds in Redis sorted sets: one key per user, score = created ms, member = "post:author".

Writes are Lua scripts fed one msgpack blob per call (Redis unpacks it in C with `cmsgpack`):
one round trip adds a batch of entries to many users' feeds, trims each to its cap and bumps
each touched user's version, atomically per call. Packing the batch in C on both sides instead
of one Redis argument per value is what makes fan-out fast: the Python client did most of the
work before (see docs/benchmarks.md). The scripts build keys from the prefix, so they need a
single Redis (or one cluster slot); on Redis Cluster each batch would need a hash tag.

Ids travel as strings: 64-bit ids do not fit Lua's doubles (scores, ms since 1970, do).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import msgpack
import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from feeds.store import (
    FeedEntry,
    FeedStore,
    FeedStoreUnavailable,
    Push,
    decode_member,
    encode_member,
)

T = TypeVar("T")

_ZADD_ALL = """
local function zadd_all(key, flat)
  local added = 0
  for first = 1, #flat, 4000 do
    added = added + redis.call('ZADD', key, unpack(flat, first, math.min(first + 3999, #flat)))
  end
  return added
end
"""

# ARGV = prefix, cap, msgpack [[user, [score, member, score, member, ...]], ...]
_PUSH_USERS = (
    _ZADD_ALL
    + """
local feed, version = ARGV[1] .. 'feed:', ARGV[1] .. 'version:'
local cap = tonumber(ARGV[2])
local total = 0
for _, item in ipairs(cmsgpack.unpack(ARGV[3])) do
  local key = feed .. item[1]
  local added = zadd_all(key, item[2])
  if added > 0 then
    redis.call('ZREMRANGEBYRANK', key, 0, -cap - 1)
    redis.call('INCR', version .. item[1])
    total = total + added
  end
end
return total
"""
)

# as _PUSH_USERS; each feed is emptied first and always gets a new version
_REPLACE = (
    _ZADD_ALL
    + """
local feed, version = ARGV[1] .. 'feed:', ARGV[1] .. 'version:'
local cap = tonumber(ARGV[2])
local total = 0
for _, item in ipairs(cmsgpack.unpack(ARGV[3])) do
  local key = feed .. item[1]
  redis.call('DEL', key)
  zadd_all(key, item[2])
  redis.call('ZREMRANGEBYRANK', key, 0, -cap - 1)
  redis.call('INCR', version .. item[1])
  total = total + redis.call('ZCARD', key)
end
return total
"""
)

# KEYS = per user (feed, version); ARGV = members to remove
_REMOVE = """
local total = 0
for i = 1, #KEYS, 2 do
  local removed = redis.call('ZREM', KEYS[i], unpack(ARGV))
  if removed > 0 then
    redis.call('INCR', KEYS[i + 1])
    total = total + removed
  end
end
return total
"""

# values per script call: keeps each call (and its time holding Redis) short
_BATCH_VALUES = 20_000


class RedisFeedStore(FeedStore):
    def __init__(
        self,
        url: str,
        *,
        max_length: int = 800,
        prefix: str = "feeds:",
        connect_timeout: float = 0.5,
        timeout: float = 5.0,
    ) -> None:
        self.max_length = max_length
        self.prefix = prefix
        # no retries with backoff: a dead Redis must fail fast so the API can fall back
        self._client = redis.Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_error=[],
        )
        self._loaded: set[str] = set()  # script hashes loaded into this Redis
        self._push_users = self._client.register_script(_PUSH_USERS)
        self._replace = self._client.register_script(_REPLACE)
        self._remove = self._client.register_script(_REMOVE)

    def feed_key(self, user_id: int) -> str:
        return f"{self.prefix}feed:{user_id}"

    def version_key(self, user_id: int) -> str:
        return f"{self.prefix}version:{user_id}"

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise FeedStoreUnavailable(f"Redis feed store unreachable: {exc}") from exc

    def _run(self, script: Any, blobs: Iterator[bytes]) -> int:
        """One script call per blob, each sent as soon as it is packed and the replies read at
        the end: Redis runs one call while this process packs the next (a redis-py pipeline
        would send nothing until everything is packed)."""
        sent: list[bytes] = []  # kept for a retry after NOSCRIPT

        def remember() -> Iterator[bytes]:
            for blob in blobs:
                sent.append(blob)
                yield blob

        def run() -> int:
            try:
                return self._send_all(script, remember())
            except NoScriptError:  # Redis restarted or SCRIPT FLUSH: load and send again
                self._loaded.clear()
                return self._send_all(script, iter(sent))

        return self._call(run)

    def _send_all(self, script: Any, blobs: Iterator[bytes]) -> int:
        if script.sha not in self._loaded:
            script.sha = self._client.script_load(script.script)
            self._loaded.add(script.sha)
        pool = self._client.connection_pool
        connection = pool.get_connection()
        try:
            calls = 0
            for blob in blobs:
                connection.send_command(
                    "EVALSHA", script.sha, 0, self.prefix, self.max_length, blob
                )
                calls += 1
            total, error = 0, None
            for _ in range(calls):  # read every reply, so the connection stays in step
                try:
                    total += int(connection.read_response())
                except ResponseError as exc:
                    error = error or exc
            if error is not None:
                raise error
            return total
        except (RedisConnectionError, RedisTimeoutError, OSError):
            connection.disconnect()
            raise
        finally:
            pool.release(connection)

    @staticmethod
    def _user_blobs(flat_by_user: Mapping[int, list[Any]]) -> Iterator[bytes]:
        """msgpack [[user, [score, member, ...]], ...] in chunks of about _BATCH_VALUES."""
        chunk: list[Any] = []
        size = 0
        for user, flat in flat_by_user.items():
            chunk.append((str(user), flat))
            size += len(flat) + 1
            if size >= _BATCH_VALUES:
                yield msgpack.packb(chunk)
                chunk, size = [], 0
        if chunk:
            yield msgpack.packb(chunk)

    def push_many(self, entries: Iterable[Push | tuple[int, int, int, int]]) -> int:
        flat_by_user: dict[int, list[Any]] = {}
        for user_id, post_id, author_id, created_ms in entries:
            flat = flat_by_user.get(user_id)
            if flat is None:
                flat = flat_by_user[user_id] = []
            flat += (str(int(created_ms)), f"{post_id}:{author_id}")
        return self._run(self._push_users, self._user_blobs(flat_by_user))

    def push_posts(self, posts: Iterable[tuple[int, int, int, Sequence[int]]]) -> int:
        """Regrouped per user: a user who follows several of a batch's authors gets one ZADD,
        one trim and one version bump for all of them (most of the cost is per call, not per
        member), so bigger batches (a consumer that is behind) write faster."""
        flat_by_user: dict[int, list[Any]] = {}
        for post_id, author_id, created_ms, users in posts:
            pair = (str(int(created_ms)), f"{post_id}:{author_id}")
            for user_id in users:
                flat = flat_by_user.get(user_id)
                if flat is None:
                    flat = flat_by_user[user_id] = []
                flat += pair
        return self._run(self._push_users, self._user_blobs(flat_by_user))

    def replace_many(self, feeds: Mapping[int, Iterable[FeedEntry]]) -> int:
        flat_by_user = {
            int(user): [v for e in entries for v in (str(e.created_ms), e.member)]
            for user, entries in feeds.items()
        }
        return self._run(self._replace, self._user_blobs(flat_by_user))

    def read(self, user_id: int, limit: int, max_created_ms: int | None = None) -> list[FeedEntry]:
        if limit <= 0:
            return []
        top: int | str = "+inf" if max_created_ms is None else int(max_created_ms)
        rows = self._call(
            lambda: self._client.zrevrangebyscore(
                self.feed_key(user_id), top, "-inf", start=0, num=limit, withscores=True
            )
        )
        return [decode_member(member, score) for member, score in rows]

    def remove_post(self, post_id: int, author_id: int, follower_ids: Iterable[int]) -> int:
        keys = [k for user in follower_ids for k in (self.feed_key(user), self.version_key(user))]
        if not keys:
            return 0
        member = encode_member(post_id, author_id)

        def run() -> int:
            pipe = self._client.pipeline(transaction=False)
            for start in range(0, len(keys), _BATCH_VALUES):
                self._remove(keys=keys[start : start + _BATCH_VALUES], args=[member], client=pipe)
            return sum(int(n) for n in pipe.execute())

        return self._call(run)

    def remove_author(self, user_id: int, author_id: int) -> int:
        suffix = f":{author_id}"
        members = [
            m
            for m in self._call(lambda: self._client.zrange(self.feed_key(user_id), 0, -1))  # type: ignore[union-attr]
            if (m.decode() if isinstance(m, bytes) else m).endswith(suffix)
        ]
        if not members:
            return 0
        return int(
            self._call(
                lambda: self._remove(
                    keys=[self.feed_key(user_id), self.version_key(user_id)], args=members
                )
            )
        )

    def version(self, user_id: int) -> int:
        value = self._call(lambda: self._client.get(self.version_key(user_id)))
        return int(value) if value is not None else 0  # type: ignore[arg-type]

    def length(self, user_id: int) -> int:
        return int(self._call(lambda: self._client.zcard(self.feed_key(user_id))))  # type: ignore[arg-type]

    def ping(self) -> None:
        self._call(self._client.ping)

    def clear(self) -> None:
        """Delete every key under this store's prefix (tests, rebuilds)."""

        def run() -> None:
            batch = list(self._client.scan_iter(match=f"{self.prefix}*", count=1000))
            for start in range(0, len(batch), 1000):
                self._client.delete(*batch[start : start + 1000])

        self._call(run)

    def close(self) -> None:
        self._client.close()
