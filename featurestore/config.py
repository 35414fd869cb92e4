"""`feature_store.yaml` derived from the platform settings, and a ready `FeatureStore`.

One code path for both profiles:

| component | embedded (default) | services |
| --- | --- | --- |
| offline store | Feast's ClickHouse store on chDB (`CLICKHOUSE_URL=chdb:///dir`) | the same store over HTTP |
| online store | SQLite at `<data dir>/feast/online.db` | Redis (`REDIS_URL`) |
|  | (Feast's stores, also writing per-entity vectors: `featurestore.online_stores`) | |
| registry | file at `<data dir>/feast/registry.db` | SQL registry in PostgreSQL (`FEAST_REGISTRY_URL`, else `METADATA_DB_URL`) |

The yaml is written to `<data dir>/feast/repo/` next to a one-line module that imports the
definitions in `feature_repo/`, so the Feast CLI works on it too (`feast -c .data/feast/repo
plan`). Secrets are not written to the file: it names them as `${FEAST_...}` variables, which
Feast expands on load and `feature_store()` sets from the settings.

chDB allows one process per data directory, and Feast's ClickHouse offline store caches one
client per thread and never closes it: call `close_offline_client()` (or use `offline_session()`)
before another process needs the directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml
from feast import FeatureStore

from appconfig import Settings, get_settings
from featurestore.arrow_engine import ENGINE_TYPE
from featurestore.online_stores import REDIS_TYPE, SQLITE_TYPE

PROJECT = "photo_platform"
ENTITY_KEY_SERIALIZATION_VERSION = 3
POINTER_MODULE = "platform_features.py"
REGISTRY_CACHE_TTL_SECONDS = 60
# Materialization: ClickHouse keeps each entity's latest row in the window (Feast's default
# pulls every row of it into pandas to drop the older ones: a view's whole history), and Feast
# turns rows into protobufs and writes them this many at a time (its default: all at once).
# At 3,000 users x 7 days, batches of 10,000 took 1.5x as long as 100,000 (docs/benchmarks.md).
MATERIALIZATION = {"pull_latest_features": True, "online_write_batch_size": 100_000}
# Feast's local engine, with the online write handed whole Arrow batches: the SQLite store
# builds its rows column-wise instead of one protobuf per value (`featurestore.arrow_engine`).
BATCH_ENGINE = ENGINE_TYPE


@dataclass(frozen=True)
class FeastPaths:
    """Where the embedded profile keeps Feast's state: all under `<data dir>/feast`."""

    root: Path

    @classmethod
    def of(cls, settings: Settings) -> FeastPaths:
        return cls(settings.data_dir / "feast")

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def yaml(self) -> Path:
        return self.repo / "feature_store.yaml"

    @property
    def registry(self) -> Path:
        return self.root / "registry.db"

    @property
    def online(self) -> Path:
        return self.root / "online.db"


def registry_url(settings: Settings) -> str | None:
    """The PostgreSQL URL of the SQL registry, or None for the file registry."""
    for url in (settings.feast_registry_url, settings.metadata_db_url):
        if urlparse(url).scheme.startswith("postgresql"):
            return url
    return None


def _offline_store(settings: Settings) -> tuple[dict[str, Any], dict[str, str]]:
    url = urlparse(settings.clickhouse_url)
    client_settings = {"join_use_nulls": 1}  # a missing feature is NULL, not 0
    if url.scheme == "chdb":
        return {
            "type": "clickhouse",
            "host": "unused",
            "port": 0,
            "database": settings.marts_database,
            "user": "default",
            "password": "",
            "additional_client_args": {
                "interface": "chdb",
                "path": unquote(url.path),
                "settings": client_settings,
            },
        }, {}
    if url.scheme in ("http", "https"):
        secrets = {"FEAST_CLICKHOUSE_PASSWORD": unquote(url.password or "")}
        return {
            "type": "clickhouse",
            "host": url.hostname or "127.0.0.1",
            "port": url.port or (8443 if url.scheme == "https" else 8123),
            "database": settings.marts_database,
            "user": unquote(url.username or "default"),
            "password": "${FEAST_CLICKHOUSE_PASSWORD}",
            "additional_client_args": {
                "interface": url.scheme,
                "settings": client_settings,
            },
        }, secrets
    raise ValueError(f"the offline store cannot use CLICKHOUSE_URL scheme {url.scheme!r}")


def redis_connection_string(redis_url: str) -> tuple[str, dict[str, str]]:
    """`redis[s]://[user:password@]host:port/db` as Feast's `host:port,db=N,...` string."""
    url = urlparse(redis_url)
    parts = [f"{url.hostname or '127.0.0.1'}:{url.port or 6379}"]
    db = url.path.lstrip("/")
    if db:
        parts.append(f"db={int(db)}")
    secrets = {}
    if url.username:
        parts.append(f"username={unquote(url.username)}")
    if url.password:
        parts.append("password=${FEAST_REDIS_PASSWORD}")
        secrets["FEAST_REDIS_PASSWORD"] = unquote(url.password)
    if url.scheme == "rediss":
        parts.append("ssl=true")
    return ",".join(parts), secrets


def _online_store(settings: Settings) -> tuple[dict[str, Any], dict[str, str]]:
    if settings.redis_url:
        connection, secrets = redis_connection_string(settings.redis_url)
        return {"type": REDIS_TYPE, "connection_string": connection}, secrets
    return {"type": SQLITE_TYPE, "path": str(FeastPaths.of(settings).online)}, {}


def _registry(settings: Settings) -> tuple[dict[str, Any], dict[str, str]]:
    url = registry_url(settings)
    if url is None:
        return {
            "registry_type": "file",
            "path": str(FeastPaths.of(settings).registry),
            "cache_ttl_seconds": REGISTRY_CACHE_TTL_SECONDS,
        }, {}
    parsed = urlparse(url)
    user = f"{parsed.username}" if parsed.username else ""
    secrets = {}
    if parsed.password:
        user += ":${FEAST_REGISTRY_PASSWORD}"
        secrets["FEAST_REGISTRY_PASSWORD"] = unquote(parsed.password)
    host = parsed.hostname or "127.0.0.1"
    netloc = f"{user}@{host}" if user else host
    if parsed.port:
        netloc += f":{parsed.port}"
    return {
        "registry_type": "sql",
        "path": f"postgresql+psycopg://{netloc}{parsed.path or '/feast'}",
        "cache_ttl_seconds": REGISTRY_CACHE_TTL_SECONDS,
        "sqlalchemy_config_kwargs": {"echo": False, "pool_pre_ping": True},
    }, secrets


def render_config(
    settings: Settings, project: str = PROJECT
) -> tuple[dict[str, Any], dict[str, str]]:
    """The feature_store.yaml content for these settings, and the secrets it names."""
    offline, offline_secrets = _offline_store(settings)
    online, online_secrets = _online_store(settings)
    registry, registry_secrets = _registry(settings)
    config = {
        "project": project,
        "provider": "local",
        "registry": registry,
        "offline_store": offline,
        "online_store": online,
        "entity_key_serialization_version": ENTITY_KEY_SERIALIZATION_VERSION,
        "materialization": dict(MATERIALIZATION),
        "batch_engine": BATCH_ENGINE,
    }
    return config, {**offline_secrets, **online_secrets, **registry_secrets}


def write_repo(settings: Settings, project: str = PROJECT) -> Path:
    """Write `<data dir>/feast/repo/` (feature_store.yaml and the pointer to the definitions)."""
    paths = FeastPaths.of(settings)
    paths.repo.mkdir(parents=True, exist_ok=True)
    config, secrets = render_config(settings, project)
    header = (
        "# Written by featurestore.config from the platform settings: do not edit, it is\n"
        "# rewritten on every run. "
        + (
            f"Set {', '.join(sorted(secrets))} before using it with the Feast CLI.\n"
            if secrets
            else "\n"
        )
    )
    text = header + yaml.safe_dump(config, sort_keys=False)
    if not paths.yaml.exists() or paths.yaml.read_text() != text:
        paths.yaml.write_text(text)
    pointer = paths.repo / POINTER_MODULE
    pointer_text = (
        '"""The definitions live in feature_repo/ (this directory only configures them)."""\n\n'
        "from feature_repo.repo import *  # noqa: F403\n"
    )
    if not pointer.exists() or pointer.read_text() != pointer_text:
        pointer.write_text(pointer_text)
    return paths.repo


def feature_store(settings: Settings | None = None, project: str = PROJECT) -> FeatureStore:
    """A `FeatureStore` configured by the settings (writes the repo directory first)."""
    settings = settings or get_settings()
    repo = write_repo(settings, project)
    _, secrets = render_config(settings, project)
    os.environ.update(secrets)
    if not registry_url(settings):
        FeastPaths.of(settings).root.mkdir(parents=True, exist_ok=True)
    return FeatureStore(repo_path=str(repo))


def close_offline_client() -> None:
    """Close the ClickHouse client Feast cached in this thread (it holds chDB's directory)."""
    from feast.infra.utils.clickhouse import connection_utils

    client = getattr(connection_utils.thread_local, "clickhouse_client", None)
    if client is not None:
        try:
            client.close()
        finally:
            del connection_utils.thread_local.clickhouse_client


@contextmanager
def offline_session() -> Iterator[None]:
    """Use Feast's offline store inside the block; its chDB client is closed when it ends."""
    try:
        yield
    finally:
        close_offline_client()
