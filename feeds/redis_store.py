"""Feeds in Redis sorted sets: one key per user, score = created ms, member = "post:author".

Writes go through two Lua scripts so that one round trip adds a batch of entries to many users'
feeds, trims each feed to its cap and bumps each touched user's version, atomically per user.
A script touches many keys, which a single Redis (or one cluster slot) allows; on Redis Cluster
the keys would need a hash tag per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from feeds.store import (
    FeedEntry,
    FeedStore,
    FeedStoreUnavailable,
    Push,
    decode_member,
    encode_member,
    group_by_user,
)

T = TypeVar("T")

# ARGV = cap, then per user (KEYS feed, version): n, n x (score, member)
_PUSH = """
local cap = tonumber(ARGV[1])
local pos = 2
local total = 0
for i = 1, #KEYS, 2 do
  local n = tonumber(ARGV[pos])
  pos = pos + 1
  local added = 0
  local chunk = 2000
  for first = pos, pos + 2 * n - 1, chunk do
    local last = math.min(first + chunk - 1, pos + 2 * n - 1)
    added = added + redis.call('ZADD', KEYS[i], unpack(ARGV, first, last))
  end
  pos = pos + 2 * n
  if added > 0 then
    redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -cap - 1)
    redis.call('INCR', KEYS[i + 1])
    total = total + added
  end
end
return total
"""

# the same layout; each feed is emptied first and always gets a new version
_REPLACE = """
local cap = tonumber(ARGV[1])
local pos = 2
local total = 0
for i = 1, #KEYS, 2 do
  local n = tonumber(ARGV[pos])
  pos = pos + 1
  redis.call('DEL', KEYS[i])
  local chunk = 2000
  for first = pos, pos + 2 * n - 1, chunk do
    local last = math.min(first + chunk - 1, pos + 2 * n - 1)
    redis.call('ZADD', KEYS[i], unpack(ARGV, first, last))
  end
  pos = pos + 2 * n
  redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -cap - 1)
  redis.call('INCR', KEYS[i + 1])
  total = total + redis.call('ZCARD', KEYS[i])
end
return total
"""

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

# ARGV values per script call; keeps each call (and its time holding Redis) short
_BATCH_ARGS = 20_000


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
        self._push = self._client.register_script(_PUSH)
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

    def _batches(
        self, feeds: Mapping[int, list[FeedEntry]]
    ) -> Iterator[tuple[list[str], list[Any]]]:
        keys: list[str] = []
        args: list[Any] = [self.max_length]
        for user_id, entries in feeds.items():
            keys += (self.feed_key(user_id), self.version_key(user_id))
            args.append(len(entries))
            for entry in entries:
                args += (entry.created_ms, entry.member)
            if len(args) >= _BATCH_ARGS:
                yield keys, args
                keys, args = [], [self.max_length]
        if keys:
            yield keys, args

    def _run_batches(self, script: Any, feeds: Mapping[int, list[FeedEntry]]) -> int:
        def run() -> int:
            pipe = self._client.pipeline(transaction=False)
            for keys, args in self._batches(feeds):
                script(keys=keys, args=args, client=pipe)
            return sum(int(n) for n in pipe.execute())

        return self._call(run)

    def push_many(self, entries: Iterable[Push | tuple[int, int, int, int]]) -> int:
        grouped = group_by_user(entries)
        return self._run_batches(self._push, grouped) if grouped else 0

    def replace_many(self, feeds: Mapping[int, Iterable[FeedEntry]]) -> int:
        materialized = {int(user): list(entries) for user, entries in feeds.items()}
        return self._run_batches(self._replace, materialized) if materialized else 0

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
            for start in range(0, len(keys), _BATCH_ARGS):
                self._remove(keys=keys[start : start + _BATCH_ARGS], args=[member], client=pipe)
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
