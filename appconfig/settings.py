"""One settings object for every component; each is chosen by a URL with an embedded default.

The embedded profile (the default) needs no server: ClickHouse runs in process through chDB, the
object store is a local directory, Redis falls back to SQLite and metadata lives in SQLite files.
The services profile points the same code at real servers through environment variables.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Profile = Literal["embedded", "services"]


class Settings(BaseSettings):
    """Read from the environment (and `.env`); see `.env.example` for every variable."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    profile: Profile = Field("embedded", alias="PLATFORM_PROFILE")
    data_dir: Path = Field(Path(".data"), alias="PLATFORM_DATA_DIR")

    clickhouse_url: str = Field("", alias="CLICKHOUSE_URL")
    clickhouse_raw_database: str = Field("raw", alias="CLICKHOUSE_RAW_DATABASE")
    analytics_schema: str = Field("analytics", alias="ANALYTICS_SCHEMA")  # dbt: <schema>_marts, ...

    object_store_url: str = Field("", alias="OBJECT_STORE_URL")
    s3_endpoint_url: str | None = Field(None, alias="S3_ENDPOINT_URL")
    s3_access_key: SecretStr | None = Field(None, alias="S3_ACCESS_KEY")
    s3_secret_key: SecretStr | None = Field(None, alias="S3_SECRET_KEY")
    s3_region: str = Field("us-east-1", alias="S3_REGION")
    landing_prefix: str = Field("landing/events", alias="LANDING_PREFIX")
    # moderation decisions for the API's change follower (moderation/decisions.py); not ingested
    moderation_decisions_prefix: str = Field(
        "moderation/decisions", alias="MODERATION_DECISIONS_PREFIX"
    )

    kafka_bootstrap_servers: str | None = Field(None, alias="KAFKA_BOOTSTRAP_SERVERS")
    # static group membership of one consumer process (KIP-345): a member restarted with the same
    # id (e.g. after kill -9) takes its partitions back at once instead of waiting for the dead
    # member's session to expire; give every member of a group its own id. Empty: dynamic.
    kafka_group_instance_id: str = Field("", alias="KAFKA_GROUP_INSTANCE_ID")
    redis_url: str | None = Field(None, alias="REDIS_URL")
    metadata_db_url: str = Field("", alias="METADATA_DB_URL")
    # the Feast SQL registry (PostgreSQL); empty: METADATA_DB_URL if it is PostgreSQL, else a file
    feast_registry_url: str = Field("", alias="FEAST_REGISTRY_URL")

    ingest_partitions_start: str = Field("2025-01-01-00:00", alias="INGEST_PARTITIONS_START")
    future_tolerance_minutes: int = Field(60, alias="FUTURE_TOLERANCE_MINUTES")

    # online experiments (experiments/): one JSON file each; empty -> <data_dir>/experiments
    experiments_dir: str = Field("", alias="EXPERIMENTS_DIR")

    # --- models (ml/): MLflow tracking + registry; empty = SQLite under <data_dir>/mlflow ---
    mlflow_tracking_uri: str = Field("", alias="MLFLOW_TRACKING_URI")

    # --- feeds (precomputed home feeds, hybrid fan-out; see fanout/) ---------------------------
    # FEED_STORE_URL: cassandra://host:port/keyspace, redis://... or sqlite:////abs/path; empty ->
    # Cassandra when CASSANDRA_HOSTS is set, else REDIS_URL, else SQLite in the data dir
    feed_store_url: str = Field("", alias="FEED_STORE_URL")
    cassandra_hosts: str | None = Field(None, alias="CASSANDRA_HOSTS")  # host:port[,host:port]
    cassandra_keyspace: str = Field("feeds", alias="CASSANDRA_KEYSPACE")
    # the Redis read-through cache in front of a Cassandra feed store: empty -> REDIS_URL; "none"
    feed_cache_url: str = Field("", alias="FEED_CACHE_URL")
    feed_cache_ttl_seconds: int = Field(3600, alias="FEED_CACHE_TTL_SECONDS", ge=1)
    feed_max_length: int = Field(800, alias="FEED_MAX_LENGTH", ge=1)
    # authors of this dim_users tier are never pushed (pulled at read time instead) ...
    feed_celebrity_tier: str = Field("celebrity", alias="FEED_CELEBRITY_TIER")
    # ... unless a follower threshold is given, which then decides instead of the tier (not
    # dbt's tier_celebrity_min_followers, which draws the tier itself)
    feed_pull_min_followers: int | None = Field(None, alias="FEED_PULL_MIN_FOLLOWERS", ge=1)
    # how old a post in a home feed may be: the precompute and the pull read this window, and
    # serving drops older candidates (its freshness floor); one rule, so one setting
    feed_window_hours: int = Field(72, alias="FEED_WINDOW_HOURS", ge=1)
    # --- end feeds -------------------------------------------------------------------------------

    # --- recommenders (Spark ALS; see ml/spark.py, ml/recommenders/) ---------------------------
    # SPARK_MASTER: local[N] here; a cluster's master URL (spark://host:7077) runs the same code
    spark_master: str = Field("local[2]", alias="SPARK_MASTER")
    spark_driver_memory: str = Field("2g", alias="SPARK_DRIVER_MEMORY")
    # the address Spark binds (loopback unless a cluster must reach the driver) and the Python
    # its workers run (default: this interpreter; ml/spark.py)
    spark_local_ip: str = Field("127.0.0.1", alias="SPARK_LOCAL_IP")
    pyspark_python: str | None = Field(None, alias="PYSPARK_PYTHON")
    # --- end recommenders ------------------------------------------------------------------

    # --- search (search/): SEARCH_ENGINE tantivy | opensearch; empty -> OpenSearch when
    # OPENSEARCH_URL is set (the services profile), else tantivy under <data dir>/search
    search_engine: Literal["", "tantivy", "opensearch"] = Field("", alias="SEARCH_ENGINE")
    opensearch_url: str | None = Field(None, alias="OPENSEARCH_URL")
    opensearch_index_prefix: str = Field("search", alias="OPENSEARCH_INDEX_PREFIX")

    # --- key prefixes, homes and datasets --------------------------------------------------
    # Redis key prefixes of the autocomplete sets and of the notifications worker's state
    search_redis_prefix: str = Field("search:", alias="SEARCH_REDIS_PREFIX")
    notifications_prefix: str = Field("notify", alias="NOTIFICATIONS_PREFIX")
    # Dagster's instance directory (default: <data dir>/dagster)
    dagster_home_dir: Path | None = Field(None, alias="DAGSTER_HOME")
    # MovieLens 100K (default: ../shared/datasets/movielens-100k beside the clone)
    movielens_dir: Path | None = Field(None, alias="MOVIELENS_DIR")

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        data_dir = self.data_dir.expanduser().resolve()
        self.data_dir = data_dir
        if not self.clickhouse_url:
            self.clickhouse_url = f"chdb://{data_dir / 'clickhouse'}"
        if not self.object_store_url:
            self.object_store_url = f"file://{data_dir / 'objects'}"
        if not self.experiments_dir:
            self.experiments_dir = str(data_dir / "experiments")
        if not self.metadata_db_url:
            self.metadata_db_url = f"sqlite:///{data_dir / 'metadata.db'}"
        if not self.feed_store_url:  # feeds
            if self.cassandra_hosts:
                self.feed_store_url = (
                    f"cassandra://{self.cassandra_hosts}/{self.cassandra_keyspace}"
                )
            else:
                self.feed_store_url = self.redis_url or f"sqlite:///{data_dir / 'feeds.sqlite'}"
        if not self.feed_cache_url and self.feed_store_url.startswith("cassandra://"):
            self.feed_cache_url = self.redis_url or "none"
        if not self.search_engine:
            self.search_engine = "opensearch" if self.opensearch_url else "tantivy"
        if self.search_engine == "opensearch" and not self.opensearch_url:
            raise ValueError("SEARCH_ENGINE=opensearch needs OPENSEARCH_URL")
        if self.profile == "services":
            self._require_secrets()
        return self

    def _require_secrets(self) -> None:
        """Outside the embedded profile no secret may come from a default."""
        missing = []
        if self.object_store_url.startswith("s3://") and not (
            self.s3_access_key and self.s3_secret_key
        ):
            missing.append("S3_ACCESS_KEY/S3_SECRET_KEY")
        for name, url in (
            ("CLICKHOUSE_URL", self.clickhouse_url),
            ("METADATA_DB_URL", self.metadata_db_url),
        ):
            parsed = urlparse(url)
            if (
                parsed.scheme in ("http", "https", "postgresql")
                and parsed.username
                and not parsed.password
            ):
                missing.append(f"{name} password")
        if missing:
            raise ValueError(f"profile 'services' needs explicit secrets: {', '.join(missing)}")

    @property
    def is_embedded_clickhouse(self) -> bool:
        return self.clickhouse_url.startswith("chdb:")

    # where dbt writes each layer (dbt_project.yml `+schema`): the one place these names are built
    @property
    def staging_database(self) -> str:
        return f"{self.analytics_schema}_staging"

    @property
    def intermediate_database(self) -> str:
        return f"{self.analytics_schema}_intermediate"

    @property
    def marts_database(self) -> str:
        return f"{self.analytics_schema}_marts"

    @property
    def features_database(self) -> str:
        return f"{self.analytics_schema}_features"

    @property
    def dagster_home(self) -> Path:
        return self.dagster_home_dir or self.data_dir / "dagster"


def path_with(directory: Path | str) -> str:
    """This process's PATH with `directory` first: for child processes that must find the
    venv's tools (dbt, uvicorn) by name."""
    return f"{directory}{os.pathsep}{os.environ.get('PATH', '')}"


def is_set_in_environment(name: str) -> bool:
    """Whether the variable is set (non-empty) in this process's environment: Dagster resources
    then read it through `EnvVar`, so the UI shows where the value comes from."""
    return bool(os.environ.get(name))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests build their own `Settings(...)` instead."""
    return Settings()
