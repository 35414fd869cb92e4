"""Precomputed home feeds: the feed store (Redis or SQLite) and hybrid fan-out (push and pull).

`open_feed_store(settings)` is the one way in; callers catch `FeedStoreUnavailable`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from appconfig import Settings
from feeds.store import FeedEntry, FeedStore, FeedStoreUnavailable, Push

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
    """The store FEED_STORE_URL names (derived from REDIS_URL, else SQLite in the data dir)."""
    return open_feed_store_url(
        settings.feed_store_url, max_length=settings.feed_max_length, prefix=prefix
    )


def open_feed_store_url(url: str, *, max_length: int = 800, prefix: str = "feeds:") -> FeedStore:
    """redis://, rediss://, unix:// (Redis sorted sets) or sqlite:///... (one SQLite file)."""
    scheme = urlparse(url).scheme
    if scheme in ("redis", "rediss", "unix"):
        from feeds.redis_store import RedisFeedStore

        return RedisFeedStore(url, max_length=max_length, prefix=prefix)
    if scheme == "sqlite":
        from feeds.sqlite_store import SQLiteFeedStore

        return SQLiteFeedStore(sqlite_path_of(url), max_length=max_length)
    raise ValueError(
        f"FEED_STORE_URL must be redis://..., rediss://... or sqlite:///path, got {url!r}"
    )
