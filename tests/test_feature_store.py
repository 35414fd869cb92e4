"""The feature store on real marts: real Feast, real chDB, real SQLite and a real Redis.

One small workload (100 users x 2 days) is loaded and `dbt run` builds the marts once for the
module; each test then works on its own Feast repo (registry and online store in a temp dir, a
unique project in Redis).
"""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from analytics_support import DBT_DATABASES, load_landing, run_dbt
from feast import FeatureStore
from feast.infra.key_encoding_utils import deserialize_entity_key, serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

from appconfig import Settings, get_settings
from feature_repo.definitions import build
from featurestore.config import (
    FeastPaths,
    close_offline_client,
    feature_store,
    render_config,
    write_repo,
)
from featurestore.materialize import (
    Materialization,
    data_watermark,
    materialize_online,
    window_start,
)
from featurestore.online import EntityKeyCodec, OnlineFeatureReader
from featurestore.registry import apply_definitions
from featurestore.training import service_feature_columns
from objectstore import open_store
from warehouse import clickhouse_client
from workload.config import WorkloadConfig
from workload.generator import generate
from workload.writer import write_workload

START = datetime(2026, 11, 1, tzinfo=UTC)
MARTS = DBT_DATABASES.marts_database
FEATURES = DBT_DATABASES.features_database
INTERMEDIATE = DBT_DATABASES.intermediate_database
# the on-demand views' inputs are timestamps read at one-second precision online
TIME_TOLERANCE_HOURS = 1.0 / 3600


@dataclass(frozen=True)
class Warehouse:
    chdb_path: Path
    work: Path

    @property
    def url(self) -> str:
        return f"chdb://{self.chdb_path}"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    work = tmp_path_factory.mktemp("feature_marts")
    workload = generate(WorkloadConfig(users=100, days=2, seed=4, start=START))
    store = open_store(f"file://{work}/objects")
    partitions = sorted(write_workload(store, "landing/events", workload).partitions)
    chdb_path = work / "clickhouse"
    load_landing(chdb_path, store, partitions)
    run = run_dbt(work, chdb_path, "run")
    assert run.returncode == 0, run.output[-4000:]
    return Warehouse(chdb_path, work)


def settings_for(warehouse: Warehouse, data_dir: Path, redis_url: str | None = None) -> Settings:
    return Settings(
        PLATFORM_DATA_DIR=data_dir,
        CLICKHOUSE_URL=warehouse.url,
        REDIS_URL=redis_url,
        METADATA_DB_URL="",
        OBJECT_STORE_URL="",
    )


def query(warehouse: Warehouse, text: str) -> pd.DataFrame:
    with clickhouse_client(warehouse.url) as client:
        return client.query_df(text)


@dataclass
class Online:
    store: FeatureStore
    settings: Settings
    materialized: Materialization


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def online(
    request: pytest.FixtureRequest, warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Online]:
    """A repo applied and materialized up to the marts' watermark, on each online store."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    settings = settings_for(warehouse, tmp_path_factory.mktemp("feast"), redis_url)
    store = feature_store(settings, project=f"test_{uuid.uuid4().hex[:10]}")
    try:
        apply_definitions(store, settings)
        end = data_watermark(store, settings)
        assert end is not None
        materialized = materialize_online(store, end)
        yield Online(store, settings, materialized)
    finally:
        if redis_url:
            store.teardown()
        close_offline_client()


# --- configuration -----------------------------------------------------------------------------


def test_feature_store_yaml_follows_the_settings(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("FEAST_REGISTRY_URL", raising=False)
    embedded = Settings(PLATFORM_DATA_DIR=tmp_path, CLICKHOUSE_URL="", REDIS_URL=None)
    config, secrets = render_config(embedded)
    assert config["offline_store"]["additional_client_args"] == {
        "interface": "chdb",
        "path": str(tmp_path / "clickhouse"),
        "settings": {"join_use_nulls": 1},
    }
    assert config["offline_store"]["database"] == "analytics_marts"
    assert config["online_store"]["type"].endswith("PlatformSqliteOnlineStore")
    assert config["online_store"]["path"] == str(tmp_path / "feast" / "online.db")
    assert config["registry"]["registry_type"] == "file"
    assert config["registry"]["path"] == str(tmp_path / "feast" / "registry.db")
    assert config["materialization"] == {
        "pull_latest_features": True,
        "online_write_batch_size": 100_000,
    }
    assert config["batch_engine"] == "featurestore.arrow_engine.ArrowWriteComputeEngine"
    assert not secrets

    services = Settings(
        PLATFORM_PROFILE="services",
        PLATFORM_DATA_DIR=tmp_path,
        CLICKHOUSE_URL="http://reader:ch-secret@10.0.0.5:8123/default",
        REDIS_URL="redis://:r-secret@127.0.0.1:16379/2",
        METADATA_DB_URL="postgresql://platform:pg-secret@127.0.0.1:15432/dagster",
        OBJECT_STORE_URL="file:///tmp/x",
        ANALYTICS_SCHEMA="prod",
    )
    config, secrets = render_config(services, project="p1")
    assert config["project"] == "p1"
    assert config["offline_store"]["host"] == "10.0.0.5"
    assert config["offline_store"]["database"] == "prod_marts"
    assert config["online_store"] == {
        "type": "featurestore.online_stores.PlatformRedisOnlineStore",
        "connection_string": "127.0.0.1:16379,db=2,password=${FEAST_REDIS_PASSWORD}",
    }
    assert config["registry"]["registry_type"] == "sql"
    assert config["registry"]["path"] == (
        "postgresql+psycopg://platform:${FEAST_REGISTRY_PASSWORD}@127.0.0.1:15432/dagster"
    )
    assert secrets == {
        "FEAST_CLICKHOUSE_PASSWORD": "ch-secret",
        "FEAST_REDIS_PASSWORD": "r-secret",
        "FEAST_REGISTRY_PASSWORD": "pg-secret",
    }
    monkeypatch.setenv("FEAST_REGISTRY_URL", "postgresql://feast:f@db:5432/feast")
    config, _ = render_config(services)  # settings are read once, when they are built
    assert config["registry"]["path"].endswith("@127.0.0.1:15432/dagster")
    config, _ = render_config(
        services.model_copy(update={"feast_registry_url": "postgresql://feast:f@db:5432/feast"})
    )
    assert (
        config["registry"]["path"]
        == "postgresql+psycopg://feast:${FEAST_REGISTRY_PASSWORD}@db:5432/feast"
    )

    # the written file names secrets, never holds them; Feast loads it with them expanded
    repo = write_repo(services)
    text = (repo / "feature_store.yaml").read_text()
    assert "secret" not in text and "${FEAST_REDIS_PASSWORD}" in text
    assert yaml.safe_load(text)["online_store"]["type"].endswith("PlatformRedisOnlineStore")


def test_entity_key_codec_matches_feast() -> None:
    for keys, values in (
        (["post_id"], [905262196779421696]),
        (["user_id"], [-5]),
        (["user_id", "author_id"], [10000001, 10002345]),
    ):
        proto = EntityKey(join_keys=keys, entity_values=[Value(int64_val=v) for v in values])
        ordered = [v for _, v in sorted(zip(keys, values, strict=True))]
        assert EntityKeyCodec(keys).encode(*ordered) == serialize_entity_key(proto, 3)


def test_materialization_windows_are_incremental_and_bounded_by_ttl() -> None:
    views = build("analytics_features").feature_views
    end = datetime(2026, 11, 20, 12, tzinfo=UTC)
    lookback = timedelta(days=2)
    activity, trends = views["user_activity"], views["post_hashtag_trends"]
    assert window_start(activity, end, lookback) == end - timedelta(days=35)  # first run: ttl
    assert window_start(trends, end, lookback) == end - timedelta(hours=3)
    activity.materialization_intervals.append((end - timedelta(days=9), end - timedelta(days=1)))
    trends.materialization_intervals.append((end - timedelta(days=9), end - timedelta(days=1)))
    # next runs: from the previous end minus the lookback, never older than the ttl allows
    assert window_start(activity, end, lookback) == end - timedelta(days=3)
    assert window_start(trends, end, lookback) == end - timedelta(hours=3)


# --- the sources -------------------------------------------------------------------------------


def test_feature_histories_end_at_the_marts(warehouse: Warehouse) -> None:
    """The newest row of each history equals the current-state mart it re-derives."""

    def latest(table: str, keys: str) -> str:
        source = f"{FEATURES}.{table}"
        return f"select * from {source} order by {keys}, event_timestamp desc limit 1 by {keys}"

    checks = {
        "follower counts and tier (dim_users)": f"""
            select countIf(h.follower_count != u.follower_count
                or h.following_count != u.following_count or h.tier != u.tier), count()
            from ({latest("feat_user__follow_counts", "user_id")}) as h
            inner join {MARTS}.dim_users as u on h.user_id = u.user_id""",
        "profiles (dim_users)": f"""
            select countIf(h.country != u.country or h.is_private != u.is_private
                or h.signed_up_at != u.created_at), count()
            from ({latest("feat_user__profile", "user_id")}) as h
            inner join {MARTS}.dim_users as u on h.user_id = u.user_id""",
        "post totals (fct_post_engagement)": f"""
            select countIf(h.likes_total != ifNull(p.likes, 0)
                or h.comments_total != ifNull(p.comments, 0)
                or h.shares_total != ifNull(p.shares, 0) or h.saves_total != ifNull(p.saves, 0)
                or h.impressions_total != ifNull(p.impressions, 0)), count()
            from ({latest("feat_post__engagement", "post_id")}) as h
            inner join {MARTS}.fct_post_engagement as p on h.post_id = p.post_id""",
        "creator stats (fct_creator_stats)": f"""
            select countIf(h.posts != ifNull(s.posts, 0) or h.stories != ifNull(s.stories, 0)
                or h.likes_received != ifNull(s.likes_received, 0)
                or h.impressions != ifNull(s.impressions, 0)
                or h.story_views != ifNull(s.story_views, 0)), count()
            from ({latest("feat_author__stats", "author_id")}) as h
            inner join {MARTS}.fct_creator_stats as s on h.author_id = s.author_id""",
        "affinity (fct_user_author_affinity, decayed to its as_of_at)": f"""
            select countIf(abs(h.affinity_score
                    * exp2(-dateDiff('millisecond', h.event_timestamp, a.as_of_at)
                        / (h.affinity_half_life_hours * 3_600_000)) - a.affinity_score) > 1e-9
                or h.interactions != a.interactions), count()
            from ({latest("feat_viewer_author__affinity", "user_id, author_id")}) as h
            inner join {MARTS}.fct_user_author_affinity as a
                on h.user_id = a.viewer_id and h.author_id = a.author_id""",
        "follow state (int_follow_graph)": f"""
            select
                (select count() from {INTERMEDIATE}.int_follow_graph)
                    != countIf(h.is_following),
                count()
            from ({latest("feat_viewer_author__follow", "user_id, author_id")}) as h
            left join {INTERMEDIATE}.int_follow_graph as g
                on h.user_id = g.follower_id and h.author_id = g.followee_id
            where h.is_following""",
    }
    for name, text in checks.items():
        mismatches, compared = query(warehouse, text).iloc[0].tolist()
        assert compared > 0, f"{name}: nothing to compare"
        assert mismatches == 0, f"{name}: {mismatches} of {compared} differ"


# --- online store ------------------------------------------------------------------------------


def _norm(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime | pd.Timestamp):
        return int(pd.Timestamp(value).timestamp())  # online timestamps are whole seconds
    if hasattr(value, "item"):
        return _norm(value.item())
    return value


def _same(column: str, left: Any, right: Any) -> bool:
    a, b = _norm(left), _norm(right)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        if column.endswith(("post_age_hours", "hours_since_interaction")):
            return abs(a - b) <= TIME_TOLERANCE_HOURS
        if column.endswith("affinity_now"):
            return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-9)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _compare(expected: pd.DataFrame, actual: pd.DataFrame, keys: list[str], label: str) -> int:
    merged = expected.merge(actual, on=keys, suffixes=("", "__actual"), how="left")
    assert len(merged) == len(expected)
    compared = 0
    for column in expected.columns:
        if column in keys or "__" not in column:
            continue
        for _, row in merged.iterrows():
            assert _same(column, row[column], row[f"{column}__actual"]), (
                f"{label}: {column} of {dict(row[keys])}: offline {row[column]!r}, "
                f"online {row[f'{column}__actual']!r}"
            )
            compared += _norm(row[column]) is not None
    return compared


def _references(store: FeatureStore, views: list[str], odfvs: Sequence[str] = ()) -> list[str]:
    refs = [f"{v}:{f.name}" for v in views for f in store.get_feature_view(v).features]
    refs += [f"{o}:{f.name}" for o in odfvs for f in store.get_on_demand_feature_view(o).features]
    return refs


def test_online_reads_match_the_offline_store_as_of_materialization(
    online: Online, warehouse: Warehouse
) -> None:
    """For sampled entities (and a few unknown ones), our bulk reader and Feast's SDK both return
    what the offline store's point-in-time join returns at the materialization time."""
    store, end = online.store, online.materialized.end
    assert online.materialized.total_rows > 0
    users = query(
        warehouse, f"select user_id from {MARTS}.dim_users order by cityHash64(user_id) limit 12"
    )
    posts = query(
        warehouse, f"select post_id from {MARTS}.dim_posts order by cityHash64(post_id) limit 30"
    )
    authors = query(
        warehouse,
        f"select author_id from {MARTS}.fct_creator_stats order by cityHash64(author_id) limit 12",
    )
    pairs = query(
        warehouse,
        f"""select * from (
            (select viewer_id as user_id, author_id from {MARTS}.fct_user_author_affinity
             order by cityHash64(viewer_id, author_id) limit 10)
            union all
            (select follower_id, followee_id from {INTERMEDIATE}.int_follow_graph
             order by cityHash64(follower_id, followee_id) limit 10))""",
    )
    groups = {
        "user": (
            pd.concat([users, pd.DataFrame({"user_id": [1]})]),
            [
                "user_activity",
                "user_content_preferences",
                "user_profile",
                "user_follows",
                "user_hashtag_engagement",
                "user_topics",
            ],
            [],
        ),
        "post": (
            pd.concat([posts, pd.DataFrame({"post_id": [1]})]),
            [
                "post_attributes",
                "post_media_quality",
                "post_engagement",
                "post_hashtag_trends",
                "post_hashtag_buckets",
                "post_location",
                "post_topics",
            ],
            ["post_request_features"],
        ),
        "author": (
            pd.concat([authors, pd.DataFrame({"author_id": [1]})]),
            ["author_stats", "author_audience", "author_profile"],
            [],
        ),
        "pair": (
            pd.concat([pairs, pd.DataFrame({"user_id": [1], "author_id": [2]})]),
            [
                "viewer_author_affinity",
                "viewer_author_follow",
                "viewer_author_followed_back",
                "viewer_author_common_follows",
            ],
            ["viewer_author_request_features", "viewer_author_similarity"],
        ),
    }
    compared: dict[str, int] = {}
    for name, (entities, views, odfvs) in groups.items():
        keys = list(entities.columns)
        entities = entities.astype("int64").drop_duplicates().reset_index(drop=True)
        refs = _references(store, views, odfvs)
        entity_df = entities.assign(event_timestamp=end, request_at=end)
        offline = store.get_historical_features(
            entity_df=entity_df, features=refs, full_feature_names=True
        ).to_df()
        # only what was asked for (an on-demand view's sources come back too, e.g. the author's
        # profile under viewer_author_similarity)
        wanted = {ref.replace(":", "__") for ref in refs}
        offline = offline[[*keys, *[c for c in offline.columns if c in wanted]]]

        reader = OnlineFeatureReader(store, refs)
        if name == "user":
            ours = pd.DataFrame(
                [
                    {"user_id": u, **reader.read(user_id=u, request_at=end).user}
                    for u in entities["user_id"]
                ]
            )
        elif name == "pair":
            ours = pd.concat(
                [
                    reader.read(
                        user_id=u, author_ids=list(group["author_id"]), request_at=end
                    ).candidates.assign(user_id=u)
                    for u, group in entities.groupby("user_id")
                ]
            )
        elif name == "post":
            ours = reader.read(post_ids=list(entities["post_id"]), request_at=end).candidates
        else:
            ours = reader.read(author_ids=list(entities["author_id"]), request_at=end).candidates
        reader.close()
        compared[name] = _compare(offline, ours, keys, f"{name}: ours")

        rows = entities.assign(request_at=end).to_dict("records")
        feast = store.get_online_features(
            features=refs, entity_rows=rows, full_feature_names=True
        ).to_df()
        assert _compare(offline, feast, keys, f"{name}: Feast SDK") == compared[name]
    # values (not nulls) compared per entity group
    assert compared["user"] > 200 and compared["post"] > 300, compared
    assert compared["author"] > 50 and compared["pair"] > 50, compared


def test_reader_expires_values_by_ttl_and_reads_the_feed_ranker_service(online: Online) -> None:
    store, end = online.store, online.materialized.end
    reader = OnlineFeatureReader(store, "feed_ranker_v1")
    service = store.get_feature_service("feed_ranker_v1")
    assert sorted(reader.output_columns) == sorted(service_feature_columns(service))
    candidates = query_candidates(online)
    user_id = int(candidates["user_id"].iloc[0])
    posts, authors = list(candidates["post_id"]), list(candidates["author_id"])

    now = reader.read(user_id=user_id, post_ids=posts, author_ids=authors, request_at=end)
    assert list(now.candidates["post_id"]) == posts
    assert now.user["user_follows__follower_count"] is not None
    assert now.candidates["post_attributes__media_type"].notna().all()
    assert (now.candidates["post_request_features__post_age_hours"] >= 0).all()

    # 40 days later: post_engagement (30 d) and user_activity (35 d) have expired, attributes not
    later = reader.read(
        user_id=user_id, post_ids=posts, author_ids=authors, request_at=end + timedelta(days=40)
    )
    assert later.candidates["post_engagement__likes_total"].isna().all()
    assert later.user["user_activity__impressions_7d"] is None
    assert later.candidates["post_attributes__media_type"].notna().all()
    assert (
        later.candidates["post_request_features__post_age_hours"]
        >= now.candidates["post_request_features__post_age_hours"] + 40 * 24 - 1e-6
    ).all()

    # the serving reader keeps decoded vectors in memory (SQLite): the same answers, cold and warm
    cached = OnlineFeatureReader(store, "feed_ranker_v1", cache_vectors=True)
    for _ in range(2):
        for expected in (now, later):
            got = cached.read(user_id, posts, authors, request_at=expected.request_at)
            pd.testing.assert_frame_equal(got.candidates, expected.candidates)
            assert got.user.keys() == expected.user.keys()
            assert all(
                got.user[k] == v or (got.user[k] is None and v is None)
                for k, v in expected.user.items()
            )
    cached.close()

    unknown = reader.read(user_id=1, post_ids=[1, 2], author_ids=[3, 4], request_at=end)
    assert all(v is None for k, v in unknown.user.items() if not k.endswith("__follows_author"))
    features = unknown.candidates.drop(columns=["post_id", "author_id"])
    odfv = [
        c
        for c in features.columns
        if c.startswith(
            (
                "post_request",
                "viewer_author_request",
                "viewer_hashtag",
                "viewer_author_similarity",
                "viewer_post_location",
                "viewer_post_topics",
            )
        )
    ]
    assert features.drop(columns=odfv).isna().all().all()
    # no profile, no tagged place: same city, topic overlap and distance score 0, not null
    for column in (
        "viewer_author_similarity__same_home_city",
        "viewer_author_similarity__topic_overlap",
        "viewer_post_location__post_in_home_city",
        "viewer_post_location__log_distance",
        "viewer_post_topics__topic_match",
    ):
        assert (unknown.candidates[column] == 0).all(), column
    # no history, no hashtags: the viewer x hashtag affinity scores 0, not null, not an error
    assert (unknown.candidates["viewer_hashtag_features__hashtag_affinity"] == 0).all()
    assert list(unknown.candidates["viewer_author_request_features__follows_author"]) == [0, 0]
    reader.close()


@pytest.mark.parametrize("online", ["sqlite"], indirect=True)
def test_served_features_and_scores_equal_feasts_transformations(online: Online) -> None:
    """The serving reader's array forms of the on-demand views (texts as codes, cached decoded
    rows) against Feast's own pandas transformations from the registry: the same columns, and a
    ranker's scores equal to 1e-6, for sampled requests (viewer x candidates)."""
    from ml.ranking.columns import ColumnTable
    from ml.ranking.model import RankerParams, build_model
    from ml.ranking.preprocessing import Preprocessing, feature_columns
    from ml.ranking.scorer import RankerScorer
    from serving.features import _repeated

    store, end = online.store, online.materialized.end
    fast = OnlineFeatureReader(store, "feed_ranker_v1", cache_vectors=True)
    assert all(f is not None for f in fast.fast_odfvs), [o.name for o, _, _ in fast.odfvs]
    pandas_path = OnlineFeatureReader(store, "feed_ranker_v1")
    pandas_path.fast_odfvs = [None] * len(pandas_path.odfvs)  # Feast's UDFs, typed inputs
    with clickhouse_client(online.settings.clickhouse_url) as client:
        candidates = client.query_df(
            f"select distinct post_id, author_id from {MARTS}.fct_training_impressions "
            "order by cityHash64(post_id) limit 400"
        )
        users = client.query_df(
            f"select distinct viewer_id from {MARTS}.fct_training_impressions "
            "order by cityHash64(viewer_id) limit 6"
        )["viewer_id"].tolist()
    posts, authors = list(candidates["post_id"]), list(candidates["author_id"])

    def table(reader: OnlineFeatureReader, user_id: int, coded: bool) -> ColumnTable:
        """As `serving.features` builds it (`coded`: texts with their codes, which the ranker's
        categoricals are looked up through), or texts only."""
        read = reader.read_coded(user_id, posts, authors, end, numbers=True)
        columns = read.columns
        for name, value in read.user.items():
            columns[name] = _repeated(value, len(posts))
        columns["position"] = _repeated(0.0, len(posts))
        columns["surface"] = _repeated("home_feed", len(posts))
        if not coded:
            return ColumnTable(columns, len(posts))
        assert read.codes  # the candidates' texts (media type, tier) come coded
        return ColumnTable(columns, len(posts), read.codes, read.texts)

    requests = [
        (int(u), table(fast, int(u), True), table(pandas_path, int(u), False)) for u in [*users, 1]
    ]
    text_views = ("viewer_author_similarity__", "viewer_post_location__")
    seen = 0
    for _, ours, theirs in requests:
        assert ours.columns == theirs.columns
        for name in ours.columns:
            if name.startswith(text_views):
                expected = np.asarray(theirs[name], dtype=float)
                np.testing.assert_array_equal(np.asarray(ours[name], dtype=float), expected, name)
                seen += int(np.count_nonzero(expected))
    assert seen > 100  # the text views are not all zero here

    frame = pd.concat([theirs.to_frame() for _, _, theirs in requests], ignore_index=True)
    spec = Preprocessing.fit(frame, feature_columns(frame))
    scorer = RankerScorer(spec, build_model(spec, RankerParams()))
    # the candidates' coded texts (media type, author tier) are among the categoricals
    assert {c.name for c in spec.categorical} & set(requests[0][1].codes)
    for _, ours, theirs in requests:
        np.testing.assert_array_equal(
            spec.transform(ours)["categorical"], spec.transform(theirs)["categorical"]
        )
        np.testing.assert_allclose(scorer.predict(ours), scorer.predict(theirs), rtol=0, atol=1e-6)
    fast.close()
    pandas_path.close()


@pytest.mark.parametrize("online", ["sqlite"], indirect=True)
def test_sqlite_reads_past_the_bound_variable_limit(online: Online, monkeypatch) -> None:
    """Requests with more keys than SQLite binds in one statement are split, same answer."""
    reader = OnlineFeatureReader(online.store, "feed_ranker_v1")
    candidates = query_candidates(online)
    user_id = int(candidates["user_id"].iloc[0])
    posts, authors = list(candidates["post_id"]) * 3, list(candidates["author_id"]) * 3

    def read() -> Any:
        return reader.read(user_id, posts, authors, request_at=online.materialized.end)

    whole = read()
    monkeypatch.setattr("featurestore.online.MAX_SQLITE_VARIABLES", 7)
    chunked = read()
    pd.testing.assert_frame_equal(whole.candidates, chunked.candidates)
    assert whole.user == chunked.user
    reader.close()


@pytest.mark.parametrize("online", ["sqlite"], indirect=True)
def test_sqlite_batched_read_equals_one_lookup_per_view_and_key(
    online: Online, monkeypatch
) -> None:
    """The views of one entity are read in one query (`view IN (..) AND entity_key IN (..)`):
    every blob must be the one a lookup of that view and key alone returns, found or missing,
    for the pair views (one key list shared), the post views, and chunked statements."""
    from featurestore.online import PAIR, POST
    from featurestore.online_stores import sqlite_vector_table

    reader = OnlineFeatureReader(online.store, "feed_ranker_v1")
    candidates = query_candidates(online)
    user_id = int(candidates["user_id"].iloc[0])
    authors = sorted({*map(int, candidates["author_id"]), *range(1, 40)})  # some never paired
    pair_keys = reader._keys(PAIR, [(a, user_id) for a in authors])
    post_keys = reader._keys(POST, [*map(int, candidates["post_id"]), 10**9])
    pair_views = [v.view.name for v in reader.views if v.join_keys == PAIR]
    post_views = [v.view.name for v in reader.views if v.join_keys == POST]
    assert len(pair_views) >= 2 and len(post_views) >= 2
    # the views sharing one key list (as the decoded cache asks), then one view with its own
    requests = [
        *((view, pair_keys) for view in pair_views),
        *((view, post_keys) for view in post_views),
        (pair_views[0], pair_keys[:3]),
    ]
    sqlite = online.store.config.online_store
    conn = sqlite3.connect(f"file:{sqlite.path}?mode=ro", uri=True)
    lookup = (
        f'SELECT vector FROM "{sqlite_vector_table(online.store.project)}" '
        "WHERE view = ? AND entity_key = ?"
    )
    expected = [
        [
            (row[0] if (row := conn.execute(lookup, (view, key)).fetchone()) else None)
            for key in keys
        ]
        for view, keys in requests
    ]
    conn.close()
    found = [sum(b is not None for b in blobs) for blobs in expected[: len(pair_views)]]
    missing = [sum(b is None for b in blobs) for blobs in expected[: len(pair_views)]]
    assert max(found) > 0 and min(missing) > 0  # hits and misses in the pair views

    assert reader.backend.fetch(requests) == expected
    assert [reader.backend.fetch([request])[0] for request in requests] == expected
    monkeypatch.setattr("featurestore.online.MAX_SQLITE_VARIABLES", 7)  # views and keys split
    assert reader.backend.fetch(requests) == expected
    reader.close()


@pytest.mark.parametrize("online", ["sqlite"], indirect=True)
def test_sqlite_pairs_read_by_viewer_equal_pairs_read_by_key(online: Online) -> None:
    """The viewer x author vectors are also kept clustered by viewer (same blobs), and the
    serving cache reading a viewer's pairs at once returns what reading them key by key does,
    cold and warm, for pairs the store holds and pairs it lacks."""
    from featurestore.online import PAIR
    from featurestore.online_stores import (
        fill_user_vectors,
        sqlite_user_vector_table,
        sqlite_vector_table,
    )

    store, end = online.store, online.materialized.end
    project = store.project
    pair_views = sorted(v.name for v in store.list_feature_views() if len(v.join_keys) > 1)
    conn = sqlite3.connect(store.config.online_store.path)
    users_table, table = sqlite_user_vector_table(project), sqlite_vector_table(project)
    marks = ",".join("?" * len(pair_views))
    written = conn.execute(
        f'SELECT view, user_id, entity_key, vector FROM "{users_table}" ORDER BY 1, 3', []
    ).fetchall()
    assert len(written) > 100
    assert [(v, k, b) for v, _, k, b in written] == conn.execute(
        f'SELECT view, entity_key, vector FROM "{table}" WHERE view IN ({marks}) ORDER BY 1, 2',
        pair_views,
    ).fetchall()
    users = [deserialize_entity_key(k, 3) for _, _, k, _ in written]
    assert [u for _, u, _, _ in written] == [
        key.entity_values[list(key.join_keys).index("user_id")].int64_val for key in users
    ]
    with conn:  # a store written before the table existed: `update` fills it the same
        conn.execute(f'DELETE FROM "{users_table}"')
        assert fill_user_vectors(conn, project, pair_views, 3) == len(written)
    assert conn.execute(f'SELECT * FROM "{users_table}" ORDER BY 1, 3').fetchall() == written
    conn.close()

    by_viewer = OnlineFeatureReader(store, "feed_ranker_v1", cache_vectors=True)
    by_key = OnlineFeatureReader(store, "feed_ranker_v1", cache_vectors=True)
    assert by_viewer.decoded is not None and PAIR in by_viewer.decoded.viewers
    assert by_key.decoded is not None
    by_key.decoded.viewers = {}
    candidates = query_candidates(online)
    posts = list(map(int, candidates["post_id"]))
    authors = list(map(int, candidates["author_id"]))
    viewers = [*sorted({u for _, u, _, _ in written})[:5], 10**9]
    pair_columns = [
        f"{v.prefix}__{f}" for v in by_key.views if v.join_keys == PAIR for f in v.outputs
    ]
    more = [*authors, *range(1, 30)]  # authors the viewer has no pair with too
    ids = [*posts, *range(len(more) - len(posts))]
    held = 0
    for _ in range(2):  # cold, then warm
        for viewer in viewers:
            expected = by_key.read(viewer, ids, more, request_at=end)
            got = by_viewer.read(viewer, ids, more, request_at=end)
            pd.testing.assert_frame_equal(got.candidates, expected.candidates)
            held += int(expected.candidates[pair_columns].notna().any(axis=1).sum())
    assert 0 < held < 2 * len(viewers) * len(more)  # pairs held and pairs lacking
    by_viewer.close()
    by_key.close()


def query_candidates(online: Online) -> pd.DataFrame:
    with clickhouse_client(online.settings.clickhouse_url) as client:
        return client.query_df(
            f"select viewer_id as user_id, post_id, author_id from {MARTS}.fct_training_impressions "
            "order by impressed_at desc limit 50"
        ).query("user_id == user_id.iloc[0]")


# --- orchestration ------------------------------------------------------------------------------


def test_feature_assets_sit_downstream_of_the_feature_tables(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PLATFORM_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    from orchestration.definitions import defs

    repo = defs().get_repository_def()
    graph = repo.asset_graph
    for name in ("feast_registry", "online_features", "training_set"):
        assert graph.has(dg.AssetKey(["features", name]))
    online_parents = graph.get(dg.AssetKey(["features", "online_features"])).parent_keys
    assert dg.AssetKey(["features", "feast_registry"]) in online_parents
    assert dg.AssetKey(["features", "feat_post__engagement"]) in online_parents
    assert (
        dg.AssetKey(["features", "feat_viewer_author__affinity"])
        in graph.get(dg.AssetKey(["features", "training_set"])).parent_keys
    )
    assert repo.has_job("build_features")
    get_settings.cache_clear()


def test_build_features_job_writes_the_training_set(
    warehouse: Warehouse, tmp_path: Path, monkeypatch
) -> None:
    # its own MLflow store too: another test's feed-ranker champion must not be compared with
    for name in (
        "REDIS_URL",
        "METADATA_DB_URL",
        "OBJECT_STORE_URL",
        "FEAST_REGISTRY_URL",
        "MLFLOW_TRACKING_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLATFORM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLICKHOUSE_URL", warehouse.url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    get_settings.cache_clear()
    try:
        from orchestration.definitions import defs
        from orchestration.instance import ensure_dagster_home

        settings = get_settings()
        ensure_dagster_home(settings)
        job = defs().resolve_job_def("build_features")
        with dg.DagsterInstance.get() as instance:
            result = job.execute_in_process(instance=instance, raise_on_error=False)
        assert result.success
        events = {
            e.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()
            if e.asset_key
        }
        assert set(events) == {
            "features/feast_registry",
            "features/online_features",
            "features/training_set",
        }
        assert events["features/feast_registry"]["feature_services"].value == {
            "feed_ranker_v1": "v1",
            "recommender_v1": "v1",
        }
        assert int(events["features/online_features"]["rows"].value) > 0  # type: ignore[arg-type]
        meta = {k: v.value for k, v in events["features/training_set"].items()}
        assert meta["feature_service"] == "feed_ranker_v1"
        assert meta["feature_service_version"] == "v1"

        as_of = datetime.fromisoformat(str(meta["as_of"]))
        expected = query(
            warehouse,
            f"""select count() as rows, avg(is_engaged) as label_rate
            from {MARTS}.fct_training_impressions
            where label_window_ends_at <= toDateTime64('{as_of:%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC')""",
        ).iloc[0]
        parquet = FeastPaths.of(settings).root.parent / "objects" / str(meta["object_key"])
        frame = pq.read_table(parquet).to_pandas()
        assert len(frame) == meta["rows"] == int(expected["rows"]) > 0
        assert frame["impression_id"].is_unique
        assert meta["label_rate"] == pytest.approx(float(expected["label_rate"]), abs=1e-6)
        assert frame["is_engaged"].mean() == pytest.approx(float(expected["label_rate"]))
        store = feature_store(settings)
        assert list(frame.columns[5:9]) == ["surface", "position", "explored", "is_engaged"]
        assert list(frame.columns[9:]) == service_feature_columns(
            store.get_feature_service("feed_ranker_v1")
        )
    finally:
        close_offline_client()
        get_settings.cache_clear()


def test_feast_cli_works_on_the_rendered_repo(warehouse: Warehouse, tmp_path: Path) -> None:
    """`feast plan` on `<data dir>/feast/repo` imports the definitions through the pointer
    module and finds nothing to change after `apply_definitions`."""
    settings = settings_for(warehouse, tmp_path)
    store = feature_store(settings)
    apply_definitions(store, settings)
    close_offline_client()
    env = {
        **os.environ,
        "PLATFORM_DATA_DIR": str(tmp_path),
        "CLICKHOUSE_URL": warehouse.url,
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
    }
    env.pop("REDIS_URL", None)
    env.pop("METADATA_DB_URL", None)
    feast = Path(sys.executable).parent / "feast"
    done = subprocess.run(
        [str(feast), "-c", str(FeastPaths.of(settings).repo), "plan", "--skip-source-validation"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No changes to registry" in done.stdout, done.stdout


def test_registry_in_postgresql(
    warehouse: Warehouse, tmp_path: Path, monkeypatch, feast_registry_url: str
) -> None:
    """The services profile keeps the registry in PostgreSQL (SQL registry, psycopg 3)."""
    monkeypatch.setenv("FEAST_REGISTRY_URL", feast_registry_url)
    settings = settings_for(warehouse, tmp_path)
    project = f"test_{uuid.uuid4().hex[:10]}"
    store = feature_store(settings, project=project)
    assert store.config.registry.registry_type == "sql"
    try:
        apply_definitions(store, settings)
        fresh = feature_store(settings, project=project)  # reads PostgreSQL, not a cache
        services = {s.name: s.tags["version"] for s in fresh.list_feature_services()}
        assert services == {"feed_ranker_v1": "v1", "recommender_v1": "v1"}
        assert len(fresh.list_feature_views()) == len(store.list_feature_views()) > 10
        assert not FeastPaths.of(settings).registry.exists()
    finally:
        store.registry.delete_project(project, commit=True)
        close_offline_client()
