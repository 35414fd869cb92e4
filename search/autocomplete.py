"""Prefix autocomplete on Redis sorted sets (the services profile), as the seed's design says.

One sorted set per prefix (`<prefix>ac:<p>` for every prefix p of a lower-cased username or
hashtag, 1 to `MAX_PREFIX` characters), members `kind|id|text` scored by weight (followers of a
user, posts of a hashtag), each trimmed to its `KEEP` heaviest. A lookup is one ZREVRANGE of
the query's prefix set: O(log n + k), a single round trip. Longer queries read the
`MAX_PREFIX` set and keep the members that start with the whole query.

Writes are idempotent (ZADD of the same member and score), so the batch build and the
streaming indexer can both write. The embedded profile keeps the in-memory
`serving.search.AutocompleteIndex` of the serving snapshot; both answer `Completion`s.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from appconfig import get_settings

MAX_PREFIX = 12
KEEP = 100
DEFAULT_PREFIX = "search:"


def key_prefix() -> str:
    """`SEARCH_REDIS_PREFIX`, else `search:` (tests and benchmarks use their own)."""
    return get_settings().search_redis_prefix or DEFAULT_PREFIX


@dataclass(frozen=True)
class Completion:
    kind: str  # "user" | "hashtag"
    text: str  # the username, or "#tag"
    id: int | None
    weight: float


def _member(c: Completion) -> str:
    return f"{c.kind}|{c.id if c.id is not None else ''}|{c.text}"


def _parse(member: bytes | str, score: float) -> Completion:
    text = member.decode() if isinstance(member, bytes) else member
    kind, ident, shown = text.split("|", 2)
    return Completion(kind, shown, int(ident) if ident else None, float(score))


def _key_text(c: Completion) -> str:
    return c.text.lower().lstrip("#@")


class RedisAutocomplete:
    def __init__(self, client: Any, prefix: str | None = None) -> None:
        self.redis = client
        self.prefix = prefix or key_prefix()

    @classmethod
    def from_url(cls, url: str, prefix: str | None = None) -> RedisAutocomplete:
        import redis

        return cls(redis.Redis.from_url(url, socket_timeout=1.0), prefix)

    def _key(self, p: str) -> str:
        return f"{self.prefix}ac:{p}"

    def add(self, completions: Iterable[Completion]) -> int:
        """Add (or re-weigh) entries; returns how many were written."""
        touched: set[str] = set()
        pipe = self.redis.pipeline(transaction=False)
        n = 0
        for c in completions:
            text = _key_text(c)
            member = _member(c)
            for i in range(1, min(len(text), MAX_PREFIX) + 1):
                key = self._key(text[:i])
                pipe.zadd(key, {member: c.weight})
                touched.add(key)
            n += 1
            if len(pipe) > 5_000:
                pipe.execute()
        for key in touched:
            pipe.zremrangebyrank(key, 0, -(KEEP + 1))
        pipe.execute()
        return n

    def remove(self, completions: Iterable[Completion]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for c in completions:
            text = _key_text(c)
            for i in range(1, min(len(text), MAX_PREFIX) + 1):
                pipe.zrem(self._key(text[:i]), _member(c))
        pipe.execute()

    def search(
        self, text: str, limit: int, kinds: frozenset[str] | None = None, fetch: int | None = None
    ) -> list[Completion]:
        """Entries starting with `text` (case-insensitive; `#`/`@` stripped), heaviest first."""
        key = text.lower().lstrip("#@")
        if not key:
            return []
        rows = self.redis.zrevrange(
            self._key(key[:MAX_PREFIX]), 0, (fetch or limit * 4) - 1, withscores=True
        )
        out = []
        for member, score in rows:
            c = _parse(member, score)
            if (kinds is None or c.kind in kinds) and _key_text(c).startswith(key):
                out.append(c)
        out.sort(key=lambda c: (-c.weight, len(c.text), c.text))
        return out[:limit] if fetch is None else out

    def clear(self) -> int:
        removed = 0
        for key in self.redis.scan_iter(match=f"{self.prefix}ac:*", count=1_000):
            removed += int(self.redis.delete(key))
        return removed
