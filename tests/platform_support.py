"""A small platform built end to end once, for the tests of what sits on top of the features.

`build_platform` generates a workload (with its hidden ground truth), loads its landing files
into a chDB directory of its own, builds the marts with `dbt run`, applies the Feast
definitions, materializes the online store (SQLite) and builds the `feed_ranker_v1` training set.
Every client is closed when it returns: chDB allows one data directory per process at a time,
so a test that opens this platform's directory must close its clients before another opens one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from analytics_support import load_landing, run_dbt

from appconfig import Settings
from featurestore.config import close_offline_client, feature_store
from featurestore.materialize import data_watermark, materialize_online
from featurestore.registry import apply_definitions
from featurestore.training import TrainingSet, build_training_set
from objectstore import open_store
from workload.config import WorkloadConfig
from workload.generator import Workload, generate
from workload.writer import write_workload

START = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass
class BuiltPlatform:
    work: Path
    settings: Settings
    workload: Workload
    watermark: datetime
    training_set: TrainingSet
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def chdb_path(self) -> Path:
        return self.work / "clickhouse"

    @property
    def marts(self) -> str:
        return self.settings.marts_database


def platform_settings(work: Path, **overrides: object) -> Settings:
    """Embedded settings rooted in `work`; nothing taken from the environment's service URLs."""
    values: dict[str, object] = {
        "PLATFORM_PROFILE": "embedded",
        "PLATFORM_DATA_DIR": work / "data",
        "CLICKHOUSE_URL": f"chdb://{work / 'clickhouse'}",
        "CLICKHOUSE_RAW_DATABASE": "raw",
        "OBJECT_STORE_URL": f"file://{work / 'objects'}",
        "KAFKA_BOOTSTRAP_SERVERS": None,
        "REDIS_URL": None,
        "OPENSEARCH_URL": None,
        "SEARCH_ENGINE": "tantivy",
        "METADATA_DB_URL": "",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def build_platform(
    work: Path, *, users: int = 300, days: int = 4, seed: int = 11, start: datetime = START
) -> BuiltPlatform:
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    work.mkdir(parents=True, exist_ok=True)
    settings = platform_settings(work)
    workload = generate(WorkloadConfig(users=users, days=days, seed=seed, start=start))
    store = open_store(settings.object_store_url)
    partitions = sorted(write_workload(store, settings.landing_prefix, workload).partitions)
    lap("generate")
    load_landing(work / "clickhouse", store, partitions)
    lap("ingest")
    run = run_dbt(work, work / "clickhouse", "run")
    if run.returncode != 0:
        raise RuntimeError(f"dbt run failed:\n{run.output[-4000:]}")
    lap("dbt")
    feast = feature_store(settings)
    try:
        apply_definitions(feast, settings)
        watermark = data_watermark(feast, settings)
        if watermark is None:
            raise RuntimeError("the marts are empty: no watermark to materialize to")
        materialize_online(feast, watermark, count_rows=False)
        lap("materialize")
        training_set = build_training_set(feast, settings, as_of=watermark)
        lap("training_set")
    finally:
        close_offline_client()
    return BuiltPlatform(work, settings, workload, watermark, training_set, timings)
