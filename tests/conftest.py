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


def services_required() -> bool:
    """CI, or `make test` (which starts the services first): a missing service is a failure."""
    return in_ci() or os.environ.get("REQUIRE_SERVICES", "").lower() in ("1", "true", "yes")


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
        "CASSANDRA_HOSTS",
        "OPENSEARCH_URL",
        "SEARCH_ENGINE",
        "FEED_STORE_URL",
        "FEED_CACHE_URL",
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


# --- services profile ------------------------------------------------------------------------

SERVICES_ENV = Path(__file__).resolve().parent.parent / ".services" / "services.env"


def services_env() -> dict[str, str]:
    """Where `make services-up` said the services are; the environment overrides the file."""
    values: dict[str, str] = {}
    if SERVICES_ENV.exists():
        for line in SERVICES_ENV.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    values.update(
        {
            k: v
            for k, v in os.environ.items()
            if k in values or k.startswith(("KAFKA_", "S3_", "CASSANDRA_"))
        }
    )
    return values


def require_service(name: str, reachable: bool, detail: str) -> None:
    """A missing service fails the run in CI and under `make test` (REQUIRE_SERVICES=1, which
    starts them first), and skips the test in a bare `pytest`."""
    if reachable:
        return
    message = f"{name} is not reachable ({detail}); start it with `make services-up`"
    if services_required():
        pytest.fail(message)
    pytest.skip(message)


def _tcp_open(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    bootstrap = services_env().get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    require_service("Kafka", _tcp_open(host, int(port)), bootstrap)
    return bootstrap


@pytest.fixture(scope="session")
def s3_settings() -> dict[str, str]:
    """Endpoint, keys and bucket of the running S3-compatible server (MinIO)."""
    env = services_env()
    endpoint = env.get("S3_ENDPOINT_URL", "http://127.0.0.1:19000")
    host_port = endpoint.split("://", 1)[1].rstrip("/")
    host, port = host_port.rsplit(":", 1)
    require_service("S3 server", _tcp_open(host, int(port)), endpoint)
    return {
        "S3_ENDPOINT_URL": endpoint,
        "S3_ACCESS_KEY": env.get("S3_ACCESS_KEY", ""),
        "S3_SECRET_KEY": env.get("S3_SECRET_KEY", ""),
        "S3_BUCKET": env.get("S3_BUCKET", "photo-platform"),
    }


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A running Redis (`make services-up`): REDIS_URL from the environment or services.env."""
    from urllib.parse import urlparse

    url = os.environ.get("REDIS_URL") or services_env().get(
        "REDIS_URL", "redis://127.0.0.1:16379/0"
    )
    parsed = urlparse(url)
    require_service("Redis", _tcp_open(parsed.hostname or "127.0.0.1", parsed.port or 6379), url)
    return url


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    """A running OpenSearch (`make services-up`): OPENSEARCH_URL from the environment or
    services.env."""
    from urllib.parse import urlparse

    url = os.environ.get("OPENSEARCH_URL") or services_env().get(
        "OPENSEARCH_URL", "http://127.0.0.1:19200"
    )
    parsed = urlparse(url)
    require_service(
        "OpenSearch", _tcp_open(parsed.hostname or "127.0.0.1", parsed.port or 9200), url
    )
    return url


@pytest.fixture(scope="session")
def cassandra_hosts() -> str:
    """A running Cassandra (`make services-up`): CASSANDRA_HOSTS from the environment or
    services.env."""
    hosts = services_env().get("CASSANDRA_HOSTS", "127.0.0.1:19042")
    host, port = hosts.split(",")[0].rsplit(":", 1)
    require_service("Cassandra", _tcp_open(host, int(port)), hosts)
    return hosts


@pytest.fixture(scope="session")
def cassandra_keyspace(cassandra_hosts: str) -> Iterator[str]:
    """A keyspace of this test session's own (tables created once), dropped at the end."""
    from fanout.cassandra_store import CassandraFeedStore

    keyspace = f"test_{uuid.uuid4().hex[:12]}"
    store = CassandraFeedStore(cassandra_hosts, keyspace, timeout=30)
    store.ping()  # creates the keyspace and tables
    yield keyspace
    store.drop_keyspace()
    store.close()


@pytest.fixture(scope="session")
def feast_registry_url() -> str:
    """The PostgreSQL database for Feast's SQL registry (`make services-up` creates it)."""
    from urllib.parse import urlparse

    url = os.environ.get("FEAST_REGISTRY_URL") or services_env().get(
        "FEAST_REGISTRY_URL", "postgresql://platform:platform@127.0.0.1:15432/feast"
    )
    parsed = urlparse(url)
    require_service(
        "PostgreSQL", _tcp_open(parsed.hostname or "127.0.0.1", parsed.port or 5432), url
    )
    return url


# --- a platform built end to end ----------------------------------------------------------------


@pytest.fixture(scope="session")
def built_platform(tmp_path_factory: pytest.TempPathFactory):
    """Workload -> raw -> marts -> Feast (applied, materialized) -> training set, once per session.

    Its chDB directory is its own (`built_platform.chdb_path`): close every client you open on it.
    """
    from platform_support import build_platform

    return build_platform(tmp_path_factory.mktemp("platform"))
