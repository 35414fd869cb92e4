"""What the features are on one small seeded platform: training sets and online reads.

`snapshot(work)` generates a workload (60 users x 2 days, seed 4), loads it, runs dbt, applies
the Feast definitions, materializes the online store (SQLite) up to the marts' watermark and
returns, as DataFrames:

- `training_feed_ranker_v1`, `training_recommender_v1`: the point-in-time training sets;
- `online_feed_ranker_v1`: `OnlineFeatureReader` reads of every post for a few users at the
  watermark.

`tests/data/features_before_move/` holds what the code before issue 12 (feature SQL in
`feature_repo/sql.py`) returned, recaptured in issue 13 when the workload changed (see
`tests/test_feature_parity.py`); the test checks the dbt feature tables give the same rows. Re-capture with `python tests/feature_parity.py OUT_DIR`.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from analytics_support import DBT_DATABASES, load_landing, run_dbt

from featurestore.config import close_offline_client, feature_store
from featurestore.materialize import data_watermark, materialize_online
from featurestore.online import OnlineFeatureReader
from featurestore.registry import apply_definitions
from featurestore.training import build_training_set
from objectstore import open_store
from warehouse import clickhouse_client
from workload.config import WorkloadConfig
from workload.generator import generate
from workload.writer import write_workload

START = datetime(2026, 11, 1, tzinfo=UTC)
FIXTURE = Path(__file__).resolve().parent / "data" / "features_before_move"
ONLINE_USERS = 8
ONLINE_POSTS = 150


def snapshot(work: Path) -> dict[str, pd.DataFrame]:
    from appconfig import Settings

    work.mkdir(parents=True, exist_ok=True)
    workload = generate(WorkloadConfig(users=60, days=2, seed=4, start=START))
    store = open_store(f"file://{work}/objects")
    partitions = sorted(write_workload(store, "landing/events", workload).partitions)
    chdb_path = work / "clickhouse"
    load_landing(chdb_path, store, partitions)
    run = run_dbt(work, chdb_path, "run")
    if run.returncode != 0:
        raise RuntimeError(run.output[-4000:])
    settings = Settings(
        PLATFORM_DATA_DIR=work / "data",
        CLICKHOUSE_URL=f"chdb://{chdb_path}",
        REDIS_URL=None,
        METADATA_DB_URL="",
        OBJECT_STORE_URL="",
    )
    out: dict[str, pd.DataFrame] = {}
    feast = feature_store(settings, project="parity")
    try:
        apply_definitions(feast, settings)
        watermark = data_watermark(feast, settings)
        assert watermark is not None
        materialize_online(feast, watermark, count_rows=False)
        for service in ("feed_ranker_v1", "recommender_v1"):
            out[f"training_{service}"] = build_training_set(
                feast, settings, service, as_of=watermark
            ).frame
        with clickhouse_client(settings.clickhouse_url) as client:
            posts = client.query_df(
                f"select post_id, author_id from {DBT_DATABASES.marts_database}.dim_posts "
                f"order by post_id limit {ONLINE_POSTS}"
            )
            users = client.query_df(
                f"select user_id from {DBT_DATABASES.marts_database}.dim_users "
                f"order by follower_count desc, user_id limit {ONLINE_USERS}"
            )
    finally:
        close_offline_client()
    reader = OnlineFeatureReader(feast, "feed_ranker_v1")
    try:
        frames = []
        for user_id in users["user_id"]:
            features = reader.read(
                int(user_id),
                posts["post_id"].tolist(),
                posts["author_id"].tolist(),
                request_at=watermark,
            )
            frame = features.candidates.copy()
            for name, value in features.user.items():
                frame[name] = value
            frame.insert(0, "user_id", int(user_id))
            frames.append(frame)
    finally:
        reader.close()
    out["online_feed_ranker_v1"] = pd.concat(frames, ignore_index=True)
    return out


def main(target: Path) -> None:
    import tempfile

    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, frame in snapshot(Path(tmp)).items():
            frame.to_parquet(target / f"{name}.parquet", index=False, compression="zstd")
            print(name, frame.shape)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURE)
