"""Entities, sources, feature views, on-demand views and feature services: declarations only.

Every source is a dbt feature table (`transformations/models/features/feat_<entity>__<what>`,
one row per entity and `event_timestamp`, the moment its values became true): the SQL and the
rules live there, once. `build(features_database)` returns every Feast object for the database
dbt writes the feature tables to (`Settings.features_database`); `repo.py` exposes them at
module level for the Feast CLI, and `featurestore.registry.apply_definitions` applies them from
code. Every feature view declares its whole schema, join keys included: Feast then never infers
one (inference on ClickHouse closes the client Feast caches, see STACK.md).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd
from feast import Entity, FeatureService, FeatureView, Field, RequestSource, ValueType
from feast.infra.offline_stores.contrib.clickhouse_offline_store.clickhouse_source import (
    ClickhouseSource,
)
from feast.on_demand_feature_view import OnDemandFeatureView, on_demand_feature_view
from feast.types import Bool, Float64, Int64, String, UnixTimestamp

from contracts.catalog import MEDIA_TYPES
from feature_repo.request_time import HASHTAG_BUCKETS, TOPICS

# column names of the feature tables (their SQL is in transformations/models/features/)
ENGAGEMENT_TYPES = ("like", "comment", "share", "save")
USER_ACTIVITY_METRICS = (
    "impressions",
    "dwell_ms",
    "engagements",
    "likes",
    "comments",
    "shares",
    "saves",
    "posts",
)
USER_ACTIVITY_WINDOWS = ("1d", "7d", "28d")
POST_ENGAGEMENT_METRICS = ("likes", "comments", "shares", "saves", "engagements", "impressions")
POST_ENGAGEMENT_WINDOWS = ("1h", "24h")

OWNER = "ml-platform@photo-platform.dev"
TEAM = {"team": "ml-platform", "domain": "feed"}
FEATURE_SERVICE_VERSIONS = {"feed_ranker_v1": "v1", "recommender_v1": "v1"}


@dataclass
class FeatureRepo:
    """Every Feast object of the project, by kind."""

    entities: dict[str, Entity] = field(default_factory=dict)
    sources: dict[str, ClickhouseSource | RequestSource] = field(default_factory=dict)
    feature_views: dict[str, FeatureView] = field(default_factory=dict)
    on_demand_feature_views: dict[str, OnDemandFeatureView] = field(default_factory=dict)
    feature_services: dict[str, FeatureService] = field(default_factory=dict)

    def objects(self) -> list:
        return [
            *self.entities.values(),
            *self.sources.values(),
            *self.feature_views.values(),
            *self.on_demand_feature_views.values(),
            *self.feature_services.values(),
        ]


def _ints(*names: str) -> list[Field]:
    return [Field(name=n, dtype=Int64) for n in names]


def _floats(*names: str) -> list[Field]:
    return [Field(name=n, dtype=Float64) for n in names]


# --- on-demand transformations -----------------------------------------------------------------
# Feast stores a UDF's source and rebuilds it from that text with only `pd` and `np` in scope:
# each one imports what else it needs itself. The arithmetic is in feature_repo.request_time,
# which the bulk online reader calls too: one definition.


def post_age(inputs: pd.DataFrame) -> pd.DataFrame:
    """Hours from the post's creation to the request (clipped at 0)."""
    from feature_repo import request_time as rt

    created, missing = rt.nanos(inputs["created_at"])
    request, _ = rt.nanos(inputs["request_at"])
    return pd.DataFrame(rt.post_age_arrays(created, missing, request), index=inputs.index)


def viewer_author_at_request(inputs: pd.DataFrame) -> pd.DataFrame:
    """Follow state (never followed: 0) and the affinity decayed to request time (none: 0)."""
    from feature_repo import request_time as rt

    interaction, missing = rt.nanos(inputs["last_interaction_at"])
    request, _ = rt.nanos(inputs["request_at"])
    arrays = rt.viewer_author_arrays(
        rt.numbers(inputs["is_following"]),
        rt.numbers(inputs["affinity_score"]),
        rt.numbers(inputs["affinity_half_life_hours"]),
        interaction,
        missing,
        request,
    )
    return pd.DataFrame(arrays, index=inputs.index)


def viewer_hashtag_affinity(inputs: pd.DataFrame) -> pd.DataFrame:
    """The viewer's affinity to the post's hashtags (no history or no hashtags: 0)."""
    from feature_repo import request_time as rt

    buckets = range(rt.HASHTAG_BUCKETS)
    arrays = rt.hashtag_affinity_arrays(
        np.column_stack([rt.numbers(inputs[f"engaged_tags_{b}"]) for b in buckets]),
        rt.numbers(inputs["engaged_tags_total"]),
        np.column_stack([rt.numbers(inputs[f"tags_{b}"]) for b in buckets]),
    )
    return pd.DataFrame(arrays, index=inputs.index)


def viewer_post_topics(inputs: pd.DataFrame) -> pd.DataFrame:
    """How much of the post's topics the viewer picked (no topics or no hashtags: 0)."""
    from feature_repo import request_time as rt

    arrays = rt.topic_match_arrays(
        np.column_stack([rt.numbers(inputs[f"picked_{t}"]) for t in rt.TOPICS]),
        np.column_stack([rt.numbers(inputs[f"topic_{t}"]) for t in rt.TOPICS]),
    )
    return pd.DataFrame(arrays, index=inputs.index)


def viewer_author_similarity(inputs: pd.DataFrame) -> pd.DataFrame:
    """Same home city and signup-topic overlap of the viewer and the author (unknown: 0)."""
    from feature_repo import request_time as rt

    arrays = rt.viewer_author_similarity_arrays(
        inputs["city"], inputs["interests"], inputs["author_city"], inputs["author_interests"]
    )
    return pd.DataFrame(arrays, index=inputs.index)


def viewer_post_location(inputs: pd.DataFrame) -> pd.DataFrame:
    """The post's tagged place against the viewer's home (no place or no home: 0)."""
    from feature_repo import request_time as rt

    arrays = rt.viewer_post_location_arrays(
        inputs["city"],
        rt.numbers(inputs["home_latitude"]),
        rt.numbers(inputs["home_longitude"]),
        inputs["location_name"],
        rt.numbers(inputs["location_latitude"]),
        rt.numbers(inputs["location_longitude"]),
    )
    return pd.DataFrame(arrays, index=inputs.index)


def _fresh(function: Callable) -> Callable:
    """A copy of a UDF for Feast's decorator, which rewrites the `__module__` of the function it
    is given (so a second `build()` could no longer find its source)."""
    copy = types.FunctionType(
        function.__code__, function.__globals__, function.__name__, function.__defaults__
    )
    copy.__qualname__ = function.__qualname__
    copy.__doc__ = function.__doc__
    copy.__annotations__ = dict(function.__annotations__)
    return copy


# --- the repo -----------------------------------------------------------------------------------


def build(features_database: str) -> FeatureRepo:
    """Every object, reading the feature tables in `features_database`."""
    repo = FeatureRepo()
    user = Entity(
        name="user",
        join_keys=["user_id"],
        value_type=ValueType.INT64,
        description="An account, as the viewer of a feed.",
        owner=OWNER,
        tags=TEAM,
    )
    post = Entity(
        name="post",
        join_keys=["post_id"],
        value_type=ValueType.INT64,
        description="A photo, video or carousel post.",
        owner=OWNER,
        tags=TEAM,
    )
    author = Entity(
        name="author",
        join_keys=["author_id"],
        value_type=ValueType.INT64,
        description="A user in the role of the creator of a post.",
        owner=OWNER,
        tags=TEAM,
    )
    repo.entities = {e.name: e for e in (user, post, author)}

    def view(
        name: str,
        entities: list[Entity],
        ttl: timedelta,
        table: str,
        features: list[Field],
        description: str,
    ) -> FeatureView:
        source = ClickhouseSource(
            name=f"{name}_source",
            table=f"{features_database}.{table}",
            timestamp_field="event_timestamp",
            description=description,
            owner=OWNER,
            tags=TEAM,
        )
        repo.sources[source.name] = source
        keys = [Field(name=e.join_key, dtype=Int64) for e in entities]
        fv = FeatureView(
            name=name,
            entities=entities,
            ttl=ttl,
            schema=[*keys, *features],
            source=source,
            online=True,
            description=description,
            owner=OWNER,
            tags=TEAM,
        )
        repo.feature_views[name] = fv
        return fv

    activity_columns = [f"{x}_{w}" for w in USER_ACTIVITY_WINDOWS for x in USER_ACTIVITY_METRICS]
    user_activity = view(
        "user_activity",
        [user],
        timedelta(days=35),
        "feat_user__activity",
        [
            *_ints(*activity_columns, "active_days_7d", "active_days_28d"),
            *_floats(
                "engagement_rate_7d", "avg_dwell_ms_7d", "engagement_rate_28d", "avg_dwell_ms_28d"
            ),
        ],
        "What the user did in the last 1, 7 and 28 days (as of the end of each UTC day).",
    )
    preference_fields: list[Field] = []
    for t in MEDIA_TYPES:
        preference_fields += _ints(f"impressions_{t}", f"engagements_{t}")
        preference_fields += _floats(
            f"engagement_rate_{t}", f"engagement_share_{t}", f"avg_dwell_ms_{t}"
        )
    user_content_preferences = view(
        "user_content_preferences",
        [user],
        timedelta(days=90),
        "feat_user__content_preferences",
        preference_fields,
        "Content-type preferences: impressions, engagements and dwell by media type, so far.",
    )
    user_profile = view(
        "user_profile",
        [user],
        timedelta(days=3650),
        "feat_user__profile",
        [
            Field(name="country", dtype=String),
            Field(name="is_private", dtype=Bool),
            Field(name="city", dtype=String),
            *_floats("home_latitude", "home_longitude"),
            Field(name="interests", dtype=String),
            Field(name="signed_up_at", dtype=UnixTimestamp),
        ],
        "Profile attributes (home city and coordinates, signup topics) as of each profile event.",
    )
    user_follows = view(
        "user_follows",
        [user],
        timedelta(days=3650),
        "feat_user__follow_counts",
        [*_ints("follower_count", "following_count"), Field(name="tier", dtype=String)],
        "Followers, accounts followed and follower tier, as of each change.",
    )
    post_attributes = view(
        "post_attributes",
        [post],
        timedelta(days=3650),
        "feat_post__attributes",
        [
            Field(name="media_type", dtype=String),
            *_ints("media_count", "first_media_width", "first_media_height"),
            *_floats("aspect_ratio"),
            *_ints("first_media_pixels"),
            *_floats("first_media_log_bytes_per_pixel"),
            Field(name="has_video", dtype=Bool),
            *_ints("total_duration_ms", "hashtag_count", "mention_count", "caption_length"),
            Field(name="has_location", dtype=Bool),
            Field(name="created_at", dtype=UnixTimestamp),
        ],
        "What the post is: media type, media quality proxies, text; known from its creation.",
    )
    post_media_quality = view(
        "post_media_quality",
        [post],
        timedelta(days=3650),
        "feat_post__media_quality",
        [
            *_ints("processed_media_count"),
            *_floats(
                "min_media_sharpness",
                "mean_media_brightness",
                "max_media_megapixels",
                "max_media_blockiness",
            ),
            Field(name="has_corrupt_media", dtype=Bool),
        ],
        "Quality of the post's processed media (sharpness, brightness, resolution, blockiness), "
        "known once the media pipeline has processed it.",
    )
    engagement_columns = [
        f"{x}_{w}" for w in (*POST_ENGAGEMENT_WINDOWS, "total") for x in POST_ENGAGEMENT_METRICS
    ]
    post_engagement = view(
        "post_engagement",
        [post],
        timedelta(days=30),
        "feat_post__engagement",
        [
            *_ints(*engagement_columns),
            *_floats("engagements_per_impression_24h", "engagements_per_impression_total"),
        ],
        "Engagements and impressions of the post in the last 1 h, 24 h and in total.",
    )
    post_hashtag_trends = view(
        "post_hashtag_trends",
        [post],
        timedelta(hours=3),
        "feat_post__hashtag_trends",
        [*_floats("hashtag_trend_score"), *_ints("hashtag_trend_posts")],
        "Trend score of the post's hottest hashtag in the latest hour it was used (3 h ttl).",
    )
    author_stats = view(
        "author_stats",
        [author],
        timedelta(days=90),
        "feat_author__stats",
        [
            *_ints(
                "posts",
                "stories",
                *(f"{t}s_received" for t in ENGAGEMENT_TYPES),
                "impressions",
                "story_views",
            ),
            *_floats("engagements_per_impression", "likes_per_post"),
        ],
        "Creator stats so far: what the author published and what it received.",
    )
    author_audience = view(
        "author_audience",
        [author],
        timedelta(days=3650),
        "feat_author__audience",
        [*_ints("follower_count", "following_count"), Field(name="tier", dtype=String)],
        "The author's followers and tier, as of each change.",
    )
    author_profile = view(
        "author_profile",
        [author],
        timedelta(days=3650),
        "feat_author__profile",
        [Field(name="author_city", dtype=String), Field(name="author_interests", dtype=String)],
        "The author's home city and signup topics, as of each profile event.",
    )
    post_location = view(
        "post_location",
        [post],
        timedelta(days=3650),
        "feat_post__location",
        [
            Field(name="location_name", dtype=String),
            *_floats("location_latitude", "location_longitude"),
        ],
        "The post's tagged place and its coordinates (posts without one have no row).",
    )
    viewer_author_affinity = view(
        "viewer_author_affinity",
        [user, author],
        timedelta(days=90),
        "feat_viewer_author__affinity",
        [
            *_floats("affinity_score", "affinity_half_life_hours"),
            *_ints("interactions", *(f"{t}s" for t in ENGAGEMENT_TYPES)),
            Field(name="last_interaction_at", dtype=UnixTimestamp),
        ],
        "The viewer's engagement with the author's posts so far, and its decayed score then.",
    )
    viewer_author_follow = view(
        "viewer_author_follow",
        [user, author],
        timedelta(days=3650),
        "feat_viewer_author__follow",
        [Field(name="is_following", dtype=Bool)],
        "Whether the viewer follows the author, as of each start or end of the follow.",
    )
    user_hashtag_engagement = view(
        "user_hashtag_engagement",
        [user],
        timedelta(days=90),
        "feat_user__hashtag_engagement",
        _ints(*(f"engaged_tags_{b}" for b in range(HASHTAG_BUCKETS)), "engaged_tags_total"),
        "The viewer's engaged hashtags so far, per hashtag bucket and in total.",
    )
    post_hashtag_buckets = view(
        "post_hashtag_buckets",
        [post],
        timedelta(days=3650),
        "feat_post__hashtag_buckets",
        _ints(*(f"tags_{b}" for b in range(HASHTAG_BUCKETS))),
        "The post's hashtags per hashtag bucket, known from its creation.",
    )
    viewer_author_followed_back = view(
        "viewer_author_followed_back",
        [user, author],
        timedelta(days=3650),
        "feat_viewer_author__followed_back",
        [Field(name="is_followed_back", dtype=Bool)],
        "Whether the author follows the viewer, as of each start or end of that follow.",
    )

    user_topics = view(
        "user_topics",
        [user],
        timedelta(days=3650),
        "feat_user__topics",
        _ints(*(f"picked_{t}" for t in TOPICS)),
        "The signup topics the user picked, one 0/1 column per topic.",
    )
    post_topics = view(
        "post_topics",
        [post],
        timedelta(days=3650),
        "feat_post__topics",
        _floats(*(f"topic_{t}" for t in TOPICS)),
        "What the post is about per topic, learnt from who uses its hashtags (at its creation).",
    )
    viewer_author_common_follows = view(
        "viewer_author_common_follows",
        [user, author],
        timedelta(days=3650),
        "feat_viewer_author__common_follows",
        _ints("common_follows"),
        "Friends of friends: accounts the viewer follows that follow the author, as of each "
        "change (no row: none ever).",
    )

    feed_request = RequestSource(
        name="feed_request",
        schema=[Field(name="request_at", dtype=UnixTimestamp)],
        description="When the feed is requested (the impression time in training data).",
        owner=OWNER,
        tags=TEAM,
    )
    repo.sources[feed_request.name] = feed_request

    def request_view(
        name: str, sources: list, schema: list[Field], udf: Callable, description: str
    ) -> OnDemandFeatureView:
        """An on-demand view: `udf` (arithmetic in feature_repo.request_time) over `sources`."""
        return on_demand_feature_view(
            name=name,
            sources=sources,
            schema=schema,
            mode="pandas",
            description=description,
            owner=OWNER,
            tags=TEAM,
        )(_fresh(udf))

    post_request_features = request_view(
        "post_request_features",
        [post_attributes[["created_at"]], feed_request],
        [Field(name="post_age_hours", dtype=Float64)],
        post_age,
        "The post's age at request time.",
    )
    viewer_author_request_features = request_view(
        "viewer_author_request_features",
        [
            viewer_author_follow,
            viewer_author_affinity[
                ["affinity_score", "affinity_half_life_hours", "last_interaction_at"]
            ],
            feed_request,
        ],
        [
            Field(name="follows_author", dtype=Int64),
            *_floats("affinity_now", "hours_since_interaction"),
        ],
        viewer_author_at_request,
        "Follow state and affinity at request time.",
    )
    viewer_hashtag_features = request_view(
        "viewer_hashtag_features",
        [user_hashtag_engagement, post_hashtag_buckets],
        _floats("hashtag_affinity", "hashtag_matched_share"),
        viewer_hashtag_affinity,
        "The viewer's affinity to the post's hashtags.",
    )
    viewer_author_similarity_features = request_view(
        "viewer_author_similarity",
        [user_profile[["city", "interests"]], author_profile],
        [Field(name="same_home_city", dtype=Int64), *_floats("topic_overlap")],
        viewer_author_similarity,
        "What the viewer and the author have in common: home city, signup topics.",
    )
    viewer_post_location_features = request_view(
        "viewer_post_location",
        [user_profile[["city", "home_latitude", "home_longitude"]], post_location],
        [Field(name="post_in_home_city", dtype=Int64), *_floats("log_distance")],
        viewer_post_location,
        "The post's tagged place against the viewer's home: same city, distance.",
    )
    viewer_post_topic_features = request_view(
        "viewer_post_topics",
        [user_topics, post_topics],
        _floats("topic_match"),
        viewer_post_topics,
        "How much of what the post is about the viewer picked at signup.",
    )
    repo.on_demand_feature_views = {
        v.name: v
        for v in (
            post_request_features,
            viewer_author_request_features,
            viewer_hashtag_features,
            viewer_author_similarity_features,
            viewer_post_location_features,
            viewer_post_topic_features,
        )
    }

    def service(name: str, features: list, description: str) -> FeatureService:
        return FeatureService(
            name=name,
            features=features,
            description=description,
            owner=OWNER,
            tags={**TEAM, "version": FEATURE_SERVICE_VERSIONS[name]},
        )

    repo.feature_services = {
        s.name: s
        for s in (
            service(
                "feed_ranker_v1",
                [
                    user_activity,
                    user_content_preferences,
                    user_profile[["country", "is_private", "signed_up_at"]],
                    user_follows,
                    post_attributes,
                    post_media_quality,
                    post_engagement,
                    post_hashtag_trends,
                    author_stats,
                    author_audience,
                    viewer_author_affinity[
                        ["interactions", "likes", "comments", "shares", "saves"]
                    ],
                    viewer_author_followed_back,
                    viewer_author_common_follows,
                    post_request_features,
                    viewer_hashtag_features,
                    viewer_author_request_features,
                    viewer_author_similarity_features,
                    viewer_post_location_features,
                    viewer_post_topic_features,
                ],
                "Features of the feed ranker v1: viewer, candidate post, its author, the pair.",
            ),
            service(
                "recommender_v1",
                [
                    user_activity[["engagements_28d", "impressions_28d", "active_days_28d"]],
                    user_content_preferences,
                    user_follows[["following_count"]],
                    post_attributes[["media_type", "media_count", "has_video", "hashtag_count"]],
                    post_engagement[
                        [
                            "engagements_total",
                            "impressions_total",
                            "engagements_per_impression_total",
                        ]
                    ],
                    author_stats[["posts", "engagements_per_impression"]],
                    author_audience[["follower_count", "tier"]],
                ],
                "Features of the candidate recommender v1 (no request-time features).",
            ),
        )
    }
    return repo
