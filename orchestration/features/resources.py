"""The feature store as a Dagster resource: a Feast `FeatureStore` configured by the settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
from feast import FeatureStore

from appconfig import get_settings
from featurestore.config import PROJECT, feature_store, offline_session


class FeatureStoreResource(dg.ConfigurableResource):
    """Feast over the marts; offline, online and registry stores follow the platform settings
    (CLICKHOUSE_URL, REDIS_URL, METADATA_DB_URL / FEAST_REGISTRY_URL, PLATFORM_DATA_DIR)."""

    project: str = PROJECT

    @contextmanager
    def store(self) -> Iterator[FeatureStore]:
        """A store for one step; Feast's cached ClickHouse client is closed when it ends (chDB
        allows one process per data directory)."""
        with offline_session():
            yield feature_store(get_settings(), self.project)
