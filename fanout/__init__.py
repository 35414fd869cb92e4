"""Precomputed home feeds: the feed store (Cassandra behind a Redis cache, Redis, or SQLite) and
hybrid fan-out (push and pull).

`open_feed_store(settings)` is the one way in; callers catch `FeedStoreUnavailable`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from appconfig import Settings
from fanout.cassandra_store import CassandraFeedStore
from fanout.store import FeedEntry, FeedStore, FeedStoreUnavailable, Push

__all__ = [
    "FeedEntry",
    "FeedStore",
    "FeedStoreUnavailable",
    "Push",
    "open_feed_store",
    "open_feed_store_url",
    "sqlite_path_of",
]


def sqlite_path_of(url: str) -> Path:
    """SQLAlchemy's convention, as METADATA_DB_URL: sqlite:///relative or sqlite:////absolute."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"a SQLite feed store URL starts with sqlite:///, got {url!r}")
    return Path(unquote(url.removeprefix("sqlite:///")))


def open_feed_store(settings: Settings, *, prefix: str = "feeds:") -> FeedStore:
    """The store FEED_STORE_URL names (derived from CASSANDRA_HOSTS, else REDIS_URL, else SQLite
    in the data dir); a Cassandra store gets the FEED_CACHE_URL Redis in front of it."""
    store = open_feed_store_url(
        settings.feed_store_url, max_length=settings.feed_max_length, prefix=prefix
    )
    cache = settings.feed_cache_url
    if isinstance(store, CassandraFeedStore) and cache and cache != "none":
        from fanout.cached_store import CachedFeedStore

        return CachedFeedStore(
            store, cache, prefix=prefix, ttl_seconds=settings.feed_cache_ttl_seconds
        )
    return store


def open_feed_store_url(url: str, *, max_length: int = 800, prefix: str = "feeds:") -> FeedStore:
    """cassandra://host:port[,host:port]/keyspace (Cassandra alone, no cache), redis://,
    rediss://, unix:// (Redis sorted sets) or sqlite:///... (one SQLite file)."""
    scheme = urlparse(url).scheme
    if scheme == "cassandra":
        parsed = urlparse(url)
        keyspace = parsed.path.strip("/") or "feeds"
        return CassandraFeedStore(parsed.netloc, keyspace, max_length=max_length)
    if scheme in ("redis", "rediss", "unix"):
        from fanout.redis_store import RedisFeedStore

        return RedisFeedStore(url, max_length=max_length, prefix=prefix)
    if scheme == "sqlite":
        from fanout.sqlite_store import SQLiteFeedStore

        return SQLiteFeedStore(sqlite_path_of(url), max_length=max_length)
    raise ValueError(
        "FEED_STORE_URL must be cassandra://host:port/keyspace, redis://..., rediss://... or"
        f" sqlite:///path, got {url!r}"
    )
