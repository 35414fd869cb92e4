"""Point-in-time correctness on hand-built marts: real Feast, real chDB, our feature views.

Every case is a few rows written by hand into tables shaped like the marts (and the staging
models the sources read), so the expected value of every feature at every impression is known.
The training set is built the way the `training_set` asset builds it.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from analytics_support import run_dbt

from appconfig import Settings
from featurestore.config import close_offline_client, feature_store
from featurestore.registry import apply_definitions
from featurestore.training import build_training_set, entity_query, write_training_set
from warehouse import clickhouse_client

T0 = datetime(2026, 11, 10, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


# the columns the feature sources read, with the marts' types
TABLES = {
    "marts.fct_training_impressions": "impression_id UUID, viewer_id Int64, post_id Int64, "
    "author_id Int64, impressed_at DateTime64(3, 'UTC'), surface LowCardinality(String), "
    "position Int64, dwell_ms Int64, explored Bool, label_window_ends_at DateTime64(3, 'UTC'), "
    "is_engaged Bool",
    "marts.fct_engagements": "engagement_id UUID, engagement_type LowCardinality(String), "
    "viewer_id Int64, post_id Int64, author_id Int64, engaged_at DateTime64(3, 'UTC')",
    "marts.dim_posts": "post_id Int64, author_id Int64, created_at DateTime64(3, 'UTC'), "
    "media_type LowCardinality(String), media_count UInt64, first_media_width Int64, "
    "first_media_height Int64, first_media_size_bytes Nullable(Int64), has_video Bool, total_duration_ms Int64, hashtags Array(String), "
    "hashtag_count UInt64, mentioned_user_ids Array(Int64), location_id Nullable(Int64), "
    "location_name Nullable(String), latitude Nullable(Float64), longitude Nullable(Float64), "
    "caption_length UInt64",
    "intermediate.int_hashtag_trends": "as_of String, hashtag String, "
    "hour_at DateTime64(3, 'UTC'), posts UInt64, trending_score Float64",
    "marts.fct_story_views": "story_id Int64, author_id Int64, created_at DateTime64(3, 'UTC'), "
    "expires_at DateTime64(3, 'UTC'), views Nullable(UInt64)",
    "staging.stg_raw__users": "event_id UUID, event_type String, user_id Int64, "
    "country Nullable(String), is_private Nullable(Bool), city Nullable(String), "
    "latitude Nullable(Float64), longitude Nullable(Float64), interests Nullable(String), "
    "occurred_at DateTime64(3, 'UTC')",
    "staging.stg_raw__relationships": "event_id UUID, event_type String, actor_user_id Int64, "
    "target_user_id Int64, occurred_at DateTime64(3, 'UTC')",
    "staging.stg_media__objects": "object_key String, post_id Nullable(Int64), "
    "sharpness Nullable(Float64), brightness Nullable(Float64), megapixels Nullable(Float64), "
    "blockiness Nullable(Float64), is_corrupt Bool, processed_at DateTime64(3, 'UTC')",
}


def impression(
    viewer: int,
    post: int,
    author: int,
    when: datetime,
    engaged: bool = False,
    explored: bool = False,
) -> dict:
    return {
        "impression_id": uuid.uuid4(),
        "viewer_id": viewer,
        "post_id": post,
        "author_id": author,
        "impressed_at": when,
        "surface": "feed",
        "position": 0,
        "dwell_ms": 1000,
        "explored": explored,
        "label_window_ends_at": when + timedelta(hours=24),
        "is_engaged": engaged,
    }


def engagement(kind: str, viewer: int, post: int, author: int, when: datetime) -> dict:
    return {
        "engagement_id": uuid.uuid4(),
        "engagement_type": kind,
        "viewer_id": viewer,
        "post_id": post,
        "author_id": author,
        "engaged_at": when,
    }


def post(post_id: int, author: int, when: datetime, hashtags: tuple[str, ...] = ()) -> dict:
    return {
        "post_id": post_id,
        "author_id": author,
        "created_at": when,
        "media_type": "photo",
        "media_count": 1,
        "first_media_width": 1080,
        "first_media_height": 1350,
        "first_media_size_bytes": 400_000,
        "has_video": False,
        "total_duration_ms": 0,
        "hashtags": list(hashtags),
        "hashtag_count": len(hashtags),
        "mentioned_user_ids": [],
        "location_id": None,
        "caption_length": 12,
    }


def signup(user: int, when: datetime) -> dict:
    return {
        "event_id": uuid.uuid4(),
        "event_type": "user_created",
        "user_id": user,
        "country": "PT",
        "is_private": False,
        "occurred_at": when,
    }


def relationship(kind: str, actor: int, target: int, when: datetime) -> dict:
    return {
        "event_id": uuid.uuid4(),
        "event_type": kind,
        "actor_user_id": actor,
        "target_user_id": target,
        "occurred_at": when,
    }


@pytest.fixture(scope="module")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pit_clickhouse")


@pytest.fixture
def marts(chdb_dir: Path, tmp_path: Path) -> Iterator[Any]:
    """`write(rows)` creates hand-built marts in a fresh schema and builds the dbt feature tables
    (and the follow transitions, the privacy periods they ask, and the affinity history they read)
    over them; yields (settings, write)."""
    schema = f"pit_{uuid.uuid4().hex[:8]}"
    settings = Settings(
        PLATFORM_DATA_DIR=tmp_path / "data",
        CLICKHOUSE_URL=f"chdb://{chdb_dir}",
        ANALYTICS_SCHEMA=schema,
        REDIS_URL=None,
        METADATA_DB_URL="",
    )

    def write(rows: dict[str, list[dict]]) -> None:
        with clickhouse_client(settings.clickhouse_url) as client:
            for layer in ("marts", "intermediate", "staging"):
                client.command(f"create database if not exists {schema}_{layer}")
            for name, columns in TABLES.items():
                layer, table = name.split(".")
                target = f"{schema}_{layer}.{table}"
                client.command(
                    f"create table {target} ({columns}) engine = MergeTree order by tuple()"
                )
                if rows.get(table):
                    client.insert_df(target, pd.DataFrame(rows[table]))
        built = run_dbt(
            tmp_path,
            chdb_dir,
            "run",
            "--select",
            "int_account_privacy int_follow_transitions fct_user_author_affinity_history "
            "path:models/features",
            schema=schema,
        )
        assert built.returncode == 0, built.output[-4000:]

    yield settings, write
    close_offline_client()


def training_rows(settings: Settings, *, same_as_feast: bool = True) -> pd.DataFrame:
    """The training set (ASOF joins); with `same_as_feast`, checked equal to what Feast's own
    point-in-time join gives for the same impressions, column by column. The asset's chunked
    Parquet is checked equal to it too."""
    store = feature_store(settings, project="pit")
    apply_definitions(store, settings)
    built = build_training_set(store, settings, "feed_ranker_v1", mature_labels_only=False)
    if same_as_feast:
        feast = store.get_historical_features(
            entity_df=entity_query(settings, None, mature_labels_only=False),
            features=store.get_feature_service("feed_ranker_v1"),
            full_feature_names=True,
        ).to_df()
        feast = feast[list(built.frame.columns)]
        feast = feast.sort_values(["event_timestamp", "impression_id"], ignore_index=True)
        pd.testing.assert_frame_equal(built.frame, feast)
    # the asset's Parquet, built two impressions at a time, reads back as the whole set does
    written = write_training_set(
        store, settings, "feed_ranker_v1", mature_labels_only=False, rows_per_chunk=2
    )
    assert written.rows == len(built.frame)
    assert written.positives == int(built.frame["is_engaged"].sum())
    pd.testing.assert_frame_equal(
        pd.read_parquet(io.BytesIO(written.data)), pd.read_parquet(io.BytesIO(built.to_parquet()))
    )
    return built.frame


def row(frame: pd.DataFrame, viewer: int, post_id: int, when: datetime) -> pd.Series:
    match = frame[
        (frame["user_id"] == viewer)
        & (frame["post_id"] == post_id)
        & (frame["event_timestamp"] == pd.Timestamp(when))
    ]
    assert len(match) == 1, f"impression {viewer} x {post_id} at {when}: {len(match)} rows"
    return match.iloc[0]


def test_a_value_written_after_the_impression_never_joins_to_it(marts) -> None:
    settings, write = marts
    write(
        {
            "dim_posts": [post(100, 12, at(0))],
            "fct_engagements": [
                engagement("like", 1, 100, 12, at(10.3)),  # post bucket 10:00-11:00, row at 11:00
                engagement("comment", 1, 100, 12, at(12.5)),
            ],
            "fct_training_impressions": [
                impression(1, 100, 12, at(10.3) - timedelta(milliseconds=1)),
                impression(1, 100, 12, at(10.3)),
                impression(1, 100, 12, at(11) - timedelta(milliseconds=1)),
                impression(1, 100, 12, at(11)),
                impression(1, 100, 12, at(12.4)),
                impression(1, 100, 12, at(12.5)),
                impression(1, 100, 12, at(14)),
            ],
            "stg_raw__users": [signup(1, at(-30)), signup(12, at(-30))],
        }
    )
    frame = training_rows(settings)
    # viewer x author: a row per interaction, at the interaction
    before = row(frame, 1, 100, at(10.3) - timedelta(milliseconds=1))
    assert pd.isna(before["viewer_author_affinity__interactions"])
    assert row(frame, 1, 100, at(10.3))["viewer_author_affinity__interactions"] == 1
    assert row(frame, 1, 100, at(12.4))["viewer_author_affinity__interactions"] == 1
    assert row(frame, 1, 100, at(12.5))["viewer_author_affinity__comments"] == 1
    # the post's hourly counts are known at the end of their hour, not before
    assert pd.isna(
        row(frame, 1, 100, at(11) - timedelta(milliseconds=1))["post_engagement__likes_total"]
    )
    on_time = row(frame, 1, 100, at(11))
    assert on_time["post_engagement__likes_total"] == 1
    assert on_time["post_engagement__likes_1h"] == 1
    # ... and leave the 1 h window an hour later, staying in the 24 h one
    later = row(frame, 1, 100, at(12.4))
    assert (later["post_engagement__likes_1h"], later["post_engagement__likes_24h"]) == (0, 1)
    assert row(frame, 1, 100, at(14))["post_engagement__comments_total"] == 1
    # the affinity decays from the interaction to the request
    decayed = row(frame, 1, 100, at(14))["viewer_author_request_features__affinity_now"]
    assert 0 < decayed < 4.0  # like 1 + comment 3, both older than the request
    # creator stats: from the end of the posting hour the author has 1 post and 0 likes; the
    # like counts from the end of its hour
    assert row(frame, 1, 100, at(10.3))["author_stats__posts"] == 1
    assert row(frame, 1, 100, at(10.3))["author_stats__likes_received"] == 0
    assert row(frame, 1, 100, at(11))["author_stats__likes_received"] == 1


def test_the_exploration_flag_reaches_the_training_set_and_is_no_feature(marts) -> None:
    settings, write = marts
    write(
        {
            "dim_posts": [post(100, 12, at(0)), post(200, 13, at(0))],
            "fct_training_impressions": [
                impression(1, 100, 12, at(5), explored=True),
                impression(1, 200, 13, at(5)),
                impression(2, 200, 13, at(6), engaged=True, explored=True),
            ],
            "stg_raw__users": [signup(1, at(-30)), signup(2, at(-30))],
        }
    )
    frame = training_rows(settings)
    assert row(frame, 1, 100, at(5))["explored"]
    assert not row(frame, 1, 200, at(5))["explored"]
    assert row(frame, 2, 200, at(6))["explored"]
    from ml.ranking.preprocessing import feature_columns

    assert "explored" not in feature_columns(frame)  # serving cannot know it before ranking


def test_missing_features_are_null_not_zero(marts) -> None:
    settings, write = marts
    write(
        {
            "dim_posts": [post(100, 12, at(0)), post(200, 13, at(0))],
            "fct_engagements": [engagement("like", 1, 100, 12, at(1))],
            "fct_training_impressions": [
                impression(1, 100, 12, at(30)),
                impression(2, 200, 13, at(30)),  # a viewer, post and author nobody engaged with
                impression(3, 999, 14, at(30)),  # a post missing from dim_posts
            ],
            "stg_raw__users": [signup(1, at(-30)), signup(2, at(-30))],
        }
    )
    frame = training_rows(settings)
    quiet = row(frame, 2, 200, at(30))
    for column in (
        "post_engagement__likes_total",
        "post_engagement__engagements_per_impression_total",
        "viewer_author_affinity__interactions",
        "post_hashtag_trends__hashtag_trend_score",
        "post_media_quality__min_media_sharpness",
    ):
        assert pd.isna(quiet[column]), f"{column} = {quiet[column]!r}, expected null"
    unknown = row(frame, 3, 999, at(30))
    assert pd.isna(unknown["post_attributes__media_count"])
    assert pd.isna(unknown["author_stats__posts"])
    assert pd.isna(unknown["user_profile__country"])
    assert pd.isna(unknown["user_follows__follower_count"])
    # known zeros stay zeros: user 2 signed up with no followers; author 13 posted, unliked
    assert quiet["user_follows__follower_count"] == 0
    assert quiet["author_stats__likes_received"] == 0
    assert quiet["post_attributes__media_count"] == 1
    engaged = row(frame, 1, 100, at(30))
    assert engaged["post_engagement__likes_total"] == 1
    assert engaged["post_engagement__likes_24h"] == 0  # 29 h later: left the window


def test_ttl_windows_and_follow_state(marts) -> None:
    settings, write = marts
    write(
        {
            "dim_posts": [post(100, 12, at(0), ("sun",)), post(101, 13, at(0))],
            "int_hashtag_trends": [
                {
                    "as_of": "hour_end",
                    "hashtag": "sun",
                    "hour_at": at(0),
                    "posts": 3,
                    "trending_score": 2.5,
                },
                # today's view of the same hour (the post was deleted since): not for training
                {
                    "as_of": "latest",
                    "hashtag": "sun",
                    "hour_at": at(1),
                    "posts": 9,
                    "trending_score": 7.0,
                },
            ],
            "fct_training_impressions": [
                impression(1, 100, 12, at(0.5)),  # the trend hour is not over yet
                impression(1, 100, 12, at(2)),
                impression(1, 100, 12, at(4) + timedelta(milliseconds=1)),  # ttl is 3 h
                impression(1, 101, 13, at(10)),
                impression(1, 100, 12, at(11)),
                impression(1, 100, 12, at(13)),
            ],
            "stg_raw__users": [signup(u, at(-30)) for u in (1, 12, 13)],
            "stg_raw__relationships": [
                relationship("follow", 1, 12, at(9)),
                relationship("unfollow", 1, 12, at(12)),
            ],
        }
    )
    frame = training_rows(settings)
    assert pd.isna(row(frame, 1, 100, at(0.5))["post_hashtag_trends__hashtag_trend_score"])
    assert row(frame, 1, 100, at(2))["post_hashtag_trends__hashtag_trend_score"] == 2.5
    expired = row(frame, 1, 100, at(4) + timedelta(milliseconds=1))
    assert pd.isna(expired["post_hashtag_trends__hashtag_trend_score"])
    assert row(frame, 1, 100, at(11))["viewer_author_request_features__follows_author"] == 1
    assert row(frame, 1, 100, at(13))["viewer_author_request_features__follows_author"] == 0
    assert row(frame, 1, 101, at(10))["viewer_author_request_features__follows_author"] == 0
    assert row(frame, 1, 100, at(11))["author_audience__follower_count"] == 1
    assert row(frame, 1, 100, at(13))["author_audience__follower_count"] == 0
    assert row(frame, 1, 100, at(11))["user_follows__following_count"] == 1
    assert row(frame, 1, 100, at(2))["post_request_features__post_age_hours"] == pytest.approx(2.0)


def test_pair_keys_that_read_alike_keep_their_own_features(marts) -> None:
    """Feast's ClickHouse join names an entity row by its keys and time concatenated as text:
    (user 1, author 23) and (user 12, author 3) at one instant collide and swap features. The
    ASOF join identifies rows by position: each pair keeps its own value."""
    settings, write = marts
    write(
        {
            "dim_posts": [post(230, 23, at(0)), post(300, 3, at(0))],
            "fct_engagements": [engagement("share", 1, 230, 23, at(1))],
            "fct_training_impressions": [
                impression(1, 230, 23, at(5)),
                impression(12, 300, 3, at(5)),
            ],
            "stg_raw__users": [signup(u, at(-30)) for u in (1, 12, 3, 23)],
        }
    )
    frame = training_rows(settings, same_as_feast=False)
    assert row(frame, 1, 230, at(5))["viewer_author_affinity__shares"] == 1
    assert pd.isna(row(frame, 12, 300, at(5))["viewer_author_affinity__shares"])
    # what Feast itself does with them (if this starts failing, Feast fixed it upstream)
    store = feature_store(settings, project="pit")
    entity_sql = (
        "select viewer_id as user_id, author_id, impressed_at as event_timestamp "
        f"from {settings.marts_database}.fct_training_impressions"
    )
    feast_frame = store.get_historical_features(
        entity_df=entity_sql, features=["viewer_author_affinity:shares"]
    ).to_df()
    by_user = dict(zip(feast_frame["user_id"], feast_frame["shares"], strict=True))
    assert by_user[1] == 1
    assert by_user[12] == 1  # user 12 never engaged with author 3: this is user 1's value


def media(object_key: str, post_id: int, sharpness: float, processed_at: datetime) -> dict:
    return {
        "object_key": object_key,
        "post_id": post_id,
        "sharpness": sharpness,
        "brightness": 0.5,
        "megapixels": 1.2,
        "blockiness": 0.1,
        "is_corrupt": False,
        "processed_at": processed_at,
    }


def test_media_quality_is_known_from_processing_or_soon_after_posting(marts) -> None:
    """Online, media is processed at upload: a backfill processed days later must not leave
    training rows without the media features that serving reads."""
    settings, write = marts
    write(
        {
            "dim_posts": [post(100, 12, at(0)), post(200, 13, at(0))],
            "stg_media__objects": [
                media("a", 100, 40.0, at(72)),  # a backfill, three days later
                media("b", 100, 10.0, at(72.5)),  # its second picture, later still
                media("c", 200, 25.0, at(0) + timedelta(seconds=5)),  # online, 5 s after
            ],
            "fct_training_impressions": [
                impression(1, 100, 12, at(0) + timedelta(seconds=30)),
                impression(1, 100, 12, at(1)),
                impression(1, 200, 13, at(0) + timedelta(seconds=1)),
                impression(1, 200, 13, at(0) + timedelta(seconds=10)),
            ],
            "stg_raw__users": [signup(1, at(-30))],
        }
    )
    frame = training_rows(settings)
    # within a minute of posting nothing is known yet
    assert pd.isna(
        row(frame, 1, 100, at(0) + timedelta(seconds=30))["post_media_quality__min_media_sharpness"]
    )
    backfilled = row(frame, 1, 100, at(1))
    assert backfilled["post_media_quality__processed_media_count"] == 2
    assert backfilled["post_media_quality__min_media_sharpness"] == 10.0
    # processed online: known from its processing time, not before
    early = row(frame, 1, 200, at(0) + timedelta(seconds=1))
    assert pd.isna(early["post_media_quality__min_media_sharpness"])
    assert (
        row(frame, 1, 200, at(0) + timedelta(seconds=10))["post_media_quality__min_media_sharpness"]
        == 25.0
    )
