"""Media quality reaches the ranker: media.objects -> dim_posts -> Feast `post_media_quality`
(part of `feed_ranker_v1`) -> online reads, on a small real platform (chDB, dbt, Feast, SQLite).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from analytics_support import DBT_DATABASES, load_landing, run_dbt
from platform_support import platform_settings

from featurestore.config import close_offline_client, feature_store
from featurestore.materialize import data_watermark, materialize_online
from featurestore.online import OnlineFeatureReader
from featurestore.registry import apply_definitions
from mediapipeline.pipeline import MediaJob, process_media
from objectstore import open_store
from warehouse import clickhouse_client
from workload.config import WorkloadConfig
from workload.generator import generate
from workload.media import write_media
from workload.writer import write_workload

MEDIA_FEATURES = (
    "processed_media_count",
    "min_media_sharpness",
    "mean_media_brightness",
    "max_media_megapixels",
    "max_media_blockiness",
    "has_corrupt_media",
)


def test_media_quality_features_are_in_feed_ranker_v1_and_read_online(tmp_path: Path) -> None:
    settings = platform_settings(tmp_path)
    store = open_store(settings.object_store_url)
    workload = generate(
        WorkloadConfig(users=40, days=1, seed=5, start=datetime(2026, 11, 1, tzinfo=UTC))
    )
    partitions = sorted(write_workload(store, settings.landing_prefix, workload).partitions)
    chdb_path = tmp_path / "clickhouse"
    load_landing(chdb_path, store, partitions)
    write_media(store, workload, limit=40, workers=1)
    with clickhouse_client(settings.clickhouse_url) as client:
        jobs_query = f"""
            select tupleElement(m, 'object_key'), toString(tupleElement(m, 'mime_type')),
                   post_id, user_id
            from {settings.clickhouse_raw_database}.posts final array join media as m
            where event_type = 'post_created'
        """
        jobs = [MediaJob(k, mime, p, u) for k, mime, p, u in client.query(jobs_query).result_rows]
        report = process_media(client, "media", lambda: store, jobs, workers=1)
        processed_until = client.query("select max(processed_at) from media.objects").result_rows
    assert report.processed > 5 and report.by_status.get("ok", 0) > 0
    run = run_dbt(tmp_path, chdb_path, "run")
    assert run.returncode == 0, run.output[-4000:]
    with clickhouse_client(settings.clickhouse_url) as client:
        dim = client.query_df(
            "select post_id, author_id, "
            + ", ".join(MEDIA_FEATURES)
            + f" from {DBT_DATABASES.marts_database}.dim_posts order by post_id"
        )
    processed = dim[dim["processed_media_count"].notna()]
    unprocessed = dim[dim["processed_media_count"].isna()]
    assert len(processed) > 5 and len(unprocessed) > 0

    feast = feature_store(settings)
    try:
        apply_definitions(feast, settings)
        service = feast.get_feature_service("feed_ranker_v1")
        projection = {
            p.name: [f.name for f in p.features] for p in service.feature_view_projections
        }
        assert projection["post_media_quality"] == list(MEDIA_FEATURES)
        watermark = data_watermark(feast, settings)
        assert watermark is not None
        # Media rows are stamped when processed (wall clock), so materialize up to then, rounded
        # up to a whole second: Feast's ClickHouse store bounds materialization with
        # parseDateTimeBestEffort, which drops the fraction, so rows in the last partial second
        # would wait for the next materialization.
        processed_at = processed_until[0][0].replace(tzinfo=UTC)
        end = max(watermark, processed_at.replace(microsecond=0) + timedelta(seconds=1))
        materialize_online(feast, end, count_rows=False)
        reader = OnlineFeatureReader(feast, "feed_ranker_v1")
        user_id = int(dim["author_id"].iloc[0])  # any user: only the post features are checked
        online = reader.read(
            user_id=user_id,
            post_ids=list(dim["post_id"]),
            author_ids=list(dim["author_id"]),
            request_at=end,
        ).candidates.set_index("post_id")
    finally:
        close_offline_client()

    for row in processed.itertuples():
        got = online.loc[row.post_id]
        for name in MEDIA_FEATURES:
            value, expected = got[f"post_media_quality__{name}"], getattr(row, name)
            if pd.isna(expected):  # a corrupt object has no quality scores
                assert pd.isna(value), (row.post_id, name)
            elif isinstance(expected, float):
                assert value == pytest.approx(expected, rel=1e-6), (row.post_id, name)
            else:
                assert value == expected, (row.post_id, name)
    # a post whose media was never processed has no media features, not zeros
    unread = online.loc[
        list(unprocessed["post_id"]), [f"post_media_quality__{n}" for n in MEDIA_FEATURES]
    ]
    assert unread.isna().all().all()
