"""Shared fixtures: a real embedded ClickHouse (chDB) and settings pointing at temp directories.

chDB allows one data directory per process, so the whole session shares one directory and each
test gets its own database in it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from appconfig import Settings, get_settings
from warehouse import clickhouse_client, ensure_raw_tables


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def chdb_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('clickhouse')}"


@pytest.fixture
def settings(tmp_path: Path, chdb_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Embedded-profile settings in a temp dir, also visible to code that calls get_settings()."""
    database = f"raw_{uuid.uuid4().hex[:12]}"
    for name in (
        "PLATFORM_PROFILE",
        "OBJECT_STORE_URL",
        "S3_ENDPOINT_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
        "REDIS_URL",
        "METADATA_DB_URL",
        "S3_ACCESS_KEY",
        "S3_SECRET_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLATFORM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLICKHOUSE_URL", chdb_url)
    monkeypatch.setenv("CLICKHOUSE_RAW_DATABASE", database)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def clickhouse(settings: Settings) -> Iterator[Client]:
    with clickhouse_client(settings.clickhouse_url) as client:
        ensure_raw_tables(client, settings.clickhouse_raw_database)
        yield client
