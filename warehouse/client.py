"""ClickHouse clients from a URL: `chdb:///dir` (in process) or `http(s)://user:pass@host:port/db`.

chDB allows one process per data directory and one directory per process (STACK.md), so callers
hold a client only for the span of one step: use `clickhouse_client(...)` as a context manager.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client


class WarehouseUnavailable(RuntimeError):
    """The warehouse could not be opened; the message says why (e.g. another process holds chDB)."""


def open_client(url: str, **settings: Any) -> Client:
    try:
        return clickhouse_connect.get_client(dsn=url, settings=settings or None)
    except Exception as error:
        if url.startswith("chdb:") and "EmbeddedServer" in str(error):
            raise WarehouseUnavailable(
                f"cannot open embedded ClickHouse at {url}: another process probably holds it "
                "(chDB allows one process per data directory; stop the API server, notebook or "
                f"Dagster run that has it open). Original error: {error}"
            ) from error
        raise


@contextmanager
def clickhouse_client(url: str, **settings: Any) -> Iterator[Client]:
    """A client that is closed when the block ends, releasing chDB's directory lock."""
    client = open_client(url, **settings)
    try:
        yield client
    finally:
        client.close()
