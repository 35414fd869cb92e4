"""Dagster resources: thin, configurable handles on the warehouse and the object store.

They open nothing until a step asks, and close what they opened when the step ends (chDB allows
one process per data directory).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from clickhouse_connect.driver.client import Client

from appconfig import get_settings, is_set_in_environment
from objectstore import ObjectStore, open_store
from warehouse import clickhouse_client, ensure_raw_tables


class ClickHouseResource(dg.ConfigurableResource):
    """`chdb:///dir` (embedded) or `http(s)://user:pass@host:8123/db` (a server)."""

    url: str
    raw_database: str = "raw"

    @contextmanager
    def client(self) -> Iterator[Client]:
        with clickhouse_client(self.url) as client:
            ensure_raw_tables(client, self.raw_database)
            yield client


class ObjectStoreResource(dg.ConfigurableResource):
    """`file:///dir` (embedded) or `s3://bucket` with an endpoint (services)."""

    url: str
    landing_prefix: str = "landing/events"
    endpoint_url: str | None = None
    access_key: str | None = None
    secret_key: str | None = None

    def store(self) -> ObjectStore:
        return open_store(
            self.url,
            endpoint_url=self.endpoint_url,
            access_key=self.access_key,
            secret_key=self.secret_key,
        )


class KafkaResource(dg.ConfigurableResource):
    """Bootstrap servers of the event broker ('' when there is none)."""

    bootstrap_servers: str = ""
    group_id: str = "raw-ingestion"


def env_or(name: str, default: str | None) -> dg.EnvVar | str | None:
    """An `EnvVar` where the variable is set (so the UI shows where the value comes from), else
    the settings' embedded default."""
    return dg.EnvVar(name) if is_set_in_environment(name) else default


def build_resources() -> dict[str, dg.ConfigurableResource]:
    settings = get_settings()

    def secret(value: object) -> str | None:
        return value.get_secret_value() if value is not None else None  # type: ignore[attr-defined]

    return {
        "kafka": KafkaResource(
            bootstrap_servers=env_or(
                "KAFKA_BOOTSTRAP_SERVERS", settings.kafka_bootstrap_servers or ""
            )  # type: ignore[arg-type]
        ),
        "clickhouse": ClickHouseResource(
            url=env_or("CLICKHOUSE_URL", settings.clickhouse_url),  # type: ignore[arg-type]
            raw_database=settings.clickhouse_raw_database,
        ),
        "object_store": ObjectStoreResource(
            url=env_or("OBJECT_STORE_URL", settings.object_store_url),  # type: ignore[arg-type]
            landing_prefix=settings.landing_prefix,
            endpoint_url=env_or("S3_ENDPOINT_URL", settings.s3_endpoint_url),
            access_key=env_or("S3_ACCESS_KEY", secret(settings.s3_access_key)),
            secret_key=env_or("S3_SECRET_KEY", secret(settings.s3_secret_key)),
        ),
    }
