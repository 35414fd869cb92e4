"""Materialization through the Arrow engine writes what Feast's own engine writes.

One small platform's marts (real chDB, `dbt run`) are materialized twice into fresh SQLite online
stores under the same project: with Feast's stock local engine (`batch_engine: local`, rows
converted to protobufs one value at a time) and with the platform's
`featurestore.arrow_engine` (rows built column-wise). Every row of every table must be equal
(Feast's rows with their rowids, both vector tables), and Feast's `get_online_features` must
return the same values for a sample of every view's entities.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from analytics_support import load_landing, run_dbt
from feast import FeatureStore
from feast.infra.key_encoding_utils import deserialize_entity_key
from sqlite_dump import dump_tables

from appconfig import Settings
from featurestore import config as feast_config
from featurestore.arrow_engine import ENGINE_TYPE
from featurestore.config import FeastPaths, close_offline_client, feature_store
from featurestore.materialize import data_watermark, materialize_online
from featurestore.registry import apply_definitions
from objectstore import open_store
from workload.config import WorkloadConfig
from workload.generator import generate
from workload.writer import write_workload

PROJECT = "arrow_engine_check"
SAMPLE = 40  # entities per view read back through get_online_features


@pytest.fixture(scope="module")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("arrow_engine_marts")
    start = datetime(2026, 11, 1, tzinfo=UTC)
    workload = generate(WorkloadConfig(users=80, days=2, seed=5, start=start))
    store = open_store(f"file://{work}/objects")
    partitions = sorted(write_workload(store, "landing/events", workload).partitions)
    path = work / "clickhouse"
    load_landing(path, store, partitions)
    run = run_dbt(work, path, "run")
    assert run.returncode == 0, run.output[-4000:]
    return path


def materialized(
    chdb: Path, data_dir: Path, engine: str, monkeypatch
) -> tuple[FeatureStore, Settings]:
    monkeypatch.setattr(feast_config, "BATCH_ENGINE", engine)
    settings = Settings(
        PLATFORM_DATA_DIR=data_dir,
        CLICKHOUSE_URL=f"chdb://{chdb}",
        REDIS_URL=None,
        METADATA_DB_URL="",
        OBJECT_STORE_URL="",
    )
    store = feature_store(settings, project=PROJECT)
    assert store.config.batch_engine_config == engine
    try:
        apply_definitions(store, settings)
        end = data_watermark(store, settings)
        assert end is not None
        materialize_online(store, end, count_rows=False)
    finally:
        close_offline_client()
    return store, settings


def test_arrow_engine_writes_feasts_rows(chdb_path: Path, tmp_path: Path, monkeypatch) -> None:
    feast, feast_settings = materialized(chdb_path, tmp_path / "feast", "local", monkeypatch)
    arrow, arrow_settings = materialized(chdb_path, tmp_path / "arrow", ENGINE_TYPE, monkeypatch)
    expected = dump_tables(FeastPaths.of(feast_settings).online)
    actual = dump_tables(FeastPaths.of(arrow_settings).online)
    assert sorted(expected) == sorted(actual)
    for table in expected:
        assert expected[table] == actual[table], f"{table} differs"
    views = arrow.list_feature_views()
    written = {v.name: len(expected[f"{PROJECT}_{v.name}"]) for v in views}
    # post_media_quality reads the media pipeline's analyses, which this workload has none of
    assert sum(1 for rows in written.values() if rows) >= len(views) - 1, written

    conn = sqlite3.connect(FeastPaths.of(arrow_settings).online)
    try:
        for view in views:
            keys = conn.execute(
                f'SELECT DISTINCT entity_key FROM "{PROJECT}_{view.name}" ORDER BY entity_key '
                f"LIMIT {SAMPLE}"
            ).fetchall()
            if not keys:
                continue
            rows = []
            for (key,) in keys:
                proto = deserialize_entity_key(key, 3)
                rows.append(
                    {
                        k: v.int64_val
                        for k, v in zip(proto.join_keys, proto.entity_values, strict=True)
                    }
                )
            refs = [f"{view.name}:{f.name}" for f in view.features]
            old = feast.get_online_features(features=refs, entity_rows=rows).to_dict()
            new = arrow.get_online_features(features=refs, entity_rows=rows).to_dict()
            assert old == new, view.name
            assert any(v is not None for f in view.features for v in new[f.name]), view.name
    finally:
        conn.close()
