"""Feeds in Redis sorted sets: one key per user, score = created ms, member = "post:author".

Pushes (the fan-out hot path) are plain Redis commands written straight into the socket as
RESP, in two pipelined phases: one ZADD per user with all of the batch's entries for that user,
then, only for users whose ZADD added something, a trim to the cap (ZREMRANGEBYRANK) and a
version bump (INCR). Each post's score and member are encoded once and shared by all its
recipients, so the client does little per entry, and Redis parses plain commands, which costs it
a quarter of what the same work did through Lua (docs/benchmarks.md, "Fan-out"). Between the
phases a reader may briefly see a feed one batch past its cap (reads never return more than
the cap) with the previous version; the bump follows within milliseconds.

Whole-feed replacement (the precompute) is a Lua script fed one msgpack blob per call (Redis
unpacks it in C with `cmsgpack`), so each user's feed changes atomically. Scripts build keys
from the prefix: one Redis, or one slot of a cluster. Ids travel as strings: 64-bit ids do not
fit Lua's doubles.
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

from fanout.store import (
    FeedEntry,
    FeedStore,
    FeedStoreUnavailable,
    Push,
    decode_member,
    encode_member,
)

T = TypeVar("T")

# a Lua helper the feed scripts share: ZADD of a flat [score, member, ...] list in slices, since
# unpack() of a whole long feed would overflow Lua's stack
ZADD_ALL_LUA = """
local function zadd_all(key, flat)
  local added = 0
  for first = 1, #flat, 4000 do
    added = added + redis.call('ZADD', key, unpack(flat, first, math.min(first + 3999, #flat)))
  end
  return added
end
"""

# ARGV = prefix, cap, msgpack [[user, [score, member, score, member, ...]], ...]: each feed is
# emptied, refilled, trimmed and gets a new version
_REPLACE = (
    ZADD_ALL_LUA
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


# entries per socket write on the push path
_SEND_ENTRIES = 10_000


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _entry_resp(created_ms: int, post_id: int, author_id: int) -> bytes:
    """The score and member arguments of one entry, as RESP bulk strings."""
    return _bulk(b"%d" % created_ms) + _bulk(b"%d:%d" % (post_id, author_id))


def _read_replies(connection: Any, count: int) -> tuple[list[int], ResponseError | None]:
    """Read `count` one-line replies (the push path's commands answer an integer or an error)
    straight from the socket and split them at once: redis-py's per-reply read costs the client
    about as much as encoding the entry it answers. Every reply is read, so the connection stays
    in step; an error reply counts as 0 and the first one is returned beside the counts."""
    sock = connection._sock
    if sock is None:
        raise RedisConnectionError("Redis connection is closed")
    chunks: list[bytes] = []
    lines = 0
    while lines < count:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise RedisConnectionError("Redis closed the connection")
        if chunks and chunks[-1][-1:] == b"\r" and chunk[:1] == b"\n":
            lines += 1  # a line end split between two reads
        chunks.append(chunk)
        lines += chunk.count(b"\r\n")
    parts = b"".join(chunks).split(b"\r\n")
    if lines != count or parts[-1]:
        connection.disconnect()  # out of step: never reuse it
        raise RedisConnectionError(f"expected {count} replies from Redis, got {lines}")
    parts.pop()
    try:
        return [int(part[1:]) for part in parts], None  # ":<n>"
    except ValueError:
        pass
    replies: list[int] = []
    error: ResponseError | None = None
    for part in parts:
        if part[:1] == b":":
            replies.append(int(part[1:]))
        elif part[:1] == b"-":  # "-ERR message"
            error = error or ResponseError(part[1:].decode(errors="replace"))
            replies.append(0)
        else:
            connection.disconnect()
            raise RedisConnectionError(f"unexpected reply from Redis: {part[:80]!r}")
    return replies, error


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
        self._prefix_bytes = prefix.encode()
        # no retries with backoff: a dead Redis must fail fast so the API can fall back
        self._client = redis.Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            retry_on_error=[],
        )
        self._loaded: set[str] = set()  # script hashes loaded into this Redis
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
        by_user: dict[int, list[bytes]] = {}
        for user_id, post_id, author_id, created_ms in entries:
            fragment = _entry_resp(created_ms, post_id, author_id)
            fragments = by_user.get(user_id)
            if fragments is None:
                by_user[user_id] = [fragment]
            else:
                fragments.append(fragment)
        return self._call(lambda: self._push_resp(by_user)) if by_user else 0

    def push_posts(self, posts: Iterable[tuple[int, int, int, Sequence[int]]]) -> int:
        """Regrouped per user: a user who follows several of a batch's authors gets one ZADD
        for all of them (most of the cost is per command, not per member), so bigger batches
        (a consumer that is behind) write faster."""
        by_user: dict[int, list[bytes]] = {}
        for post_id, author_id, created_ms, users in posts:
            fragment = _entry_resp(created_ms, post_id, author_id)  # shared by every recipient
            for user_id in users:
                fragments = by_user.get(user_id)
                if fragments is None:
                    by_user[user_id] = [fragment]
                else:
                    fragments.append(fragment)
        return self._call(lambda: self._push_resp(by_user)) if by_user else 0

    def _push_resp(self, by_user: Mapping[int, list[bytes]]) -> int:
        """Phase 1: ZADDs; phase 2: trim and version bump where something was added."""
        pool = self._client.connection_pool
        connection = pool.get_connection()
        try:
            users = list(by_user)
            buffer: list[bytes] = []
            pending = 0
            for user_id in users:
                fragments = by_user[user_id]
                key = self._feed_key_bytes(user_id)
                buffer.append(
                    b"*%d\r\n$4\r\nZADD\r\n$%d\r\n%s\r\n" % (2 + 2 * len(fragments), len(key), key)
                )
                buffer += fragments
                pending += len(fragments)
                if pending >= _SEND_ENTRIES:  # Redis works on this while we encode the rest
                    connection.send_packed_command([b"".join(buffer)])
                    buffer, pending = [], 0
            if buffer:
                connection.send_packed_command([b"".join(buffer)])
            added, error = _read_replies(connection, len(users))
            changed = [user for user, n in zip(users, added, strict=True) if n]
            trim = b"$1\r\n0\r\n" + _bulk(str(-self.max_length - 1).encode())
            buffer = []
            for user_id in changed:
                key = self._feed_key_bytes(user_id)
                version = b"%sversion:%d" % (self._prefix_bytes, user_id)
                buffer.append(b"*4\r\n$15\r\nZREMRANGEBYRANK\r\n" + _bulk(key) + trim)
                buffer.append(b"*2\r\n$4\r\nINCR\r\n" + _bulk(version))
            if buffer:  # even after an error: the feeds that did change get their version bump
                connection.send_packed_command([b"".join(buffer)])
                _, trim_error = _read_replies(connection, 2 * len(changed))
                error = error or trim_error
            if error is not None:
                raise error
            return sum(added)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            connection.disconnect()
            raise
        finally:
            pool.release(connection)

    def _feed_key_bytes(self, user_id: int) -> bytes:
        return b"%sfeed:%d" % (self._prefix_bytes, user_id)

    def replace_many(self, feeds: Mapping[int, Iterable[FeedEntry]]) -> int:
        flat_by_user = {
            int(user): [v for e in entries for v in (str(e.created_ms), e.member)]
            for user, entries in feeds.items()
        }
        return self._run(self._replace, self._user_blobs(flat_by_user))

    def read(self, user_id: int, limit: int, max_created_ms: int | None = None) -> list[FeedEntry]:
        limit = min(limit, self.max_length)  # a push may briefly overshoot the cap
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
        count = self._call(lambda: self._client.zcard(self.feed_key(user_id)))
        return min(int(count), self.max_length)  # type: ignore[arg-type]

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
