"""The feed store as a Dagster resource: Redis (services) or SQLite (embedded) by URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

import dagster as dg

from fanout import FeedStore, open_feed_store_url


class FeedStoreResource(dg.ConfigurableResource):
    """`redis://host:port/db` or `sqlite:////abs/path` (FEED_STORE_URL)."""

    url: str
    max_length: int = 800
    prefix: str = "feeds:"

    @contextmanager
    def open(self) -> Iterator[FeedStore]:
        store = open_feed_store_url(self.url, max_length=self.max_length, prefix=self.prefix)
        try:
            yield store
        finally:
            store.close()

    def describe(self) -> str:
        """The URL without credentials, for metadata."""
        parsed = urlparse(self.url)
        host = parsed.hostname or ""
        port = f":{parsed.port}" if parsed.port else ""
        return f"{parsed.scheme}://{host}{port}{parsed.path}"
