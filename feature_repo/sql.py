"""The SQL of every feature source: (entity keys, event_timestamp, features) rows over the marts.

Most marts are current-state snapshots, which cannot say what was known at an impression's time.
So each source rebuilds a history from event-grain marts (`fct_engagements`,
`fct_training_impressions`, `dim_posts`, `fct_hashtag_trends`, `fct_story_views`) and, where no
mart keeps the history (the follow graph, profile changes), from staging. Every row's
`event_timestamp` is the moment its values became true, computed only from events at or before
it:

- event-grain histories (affinity, follows, profiles) have a row per change, at the event time;
- bucketed aggregates are stamped at the end of their bucket (an hour or a UTC day), so a bucket
  never joins to an impression inside it;
- trailing windows (1 h / 24 h, 1 d / 7 d / 28 d) also have a row where a bucket leaves a window,
  so a count falls back to 0 on time instead of repeating its last value.

Times are event times (`occurred_at`); events that arrive late are counted from when they
happened, not from when the platform received them. Likes follow `fct_engagements`: a like that
was later unliked is not in the history at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd
import yaml

from contracts.catalog import MEDIA_TYPES

ENGAGEMENT_TYPES = ("like", "comment", "share", "save")
DBT_PROJECT = Path(__file__).resolve().parent.parent / "transformations" / "dbt_project.yml"


@dataclass(frozen=True)
class Databases:
    """Where dbt writes: `<schema>_marts` and `<schema>_staging` (see dbt_project.yml)."""

    marts: str
    staging: str

    @classmethod
    def for_schema(cls, analytics_schema: str) -> Databases:
        return cls(marts=f"{analytics_schema}_marts", staging=f"{analytics_schema}_staging")


@cache
def dbt_vars() -> dict:
    """The dbt project's vars: tiers and affinity weights mean the same here as in the marts."""
    return yaml.safe_load(DBT_PROJECT.read_text())["vars"]


def affinity_half_life_hours() -> float:
    return float(dbt_vars()["affinity_half_life_days"]) * 24.0


def as_utc(values: pd.Series) -> pd.Series:
    """Timestamps (datetimes, or Unix seconds as online reads return them) as UTC datetimes."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values):
        return values.dt.tz_localize("UTC")
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(pd.to_numeric(values, errors="coerce") * 1e9, unit="ns", utc=True)
    return pd.to_datetime(values, utc=True)


def _ts(expression: str) -> str:
    return f"toDateTime64({expression}, 3, 'UTC')"


def _windowed(
    key: str,
    buckets: str,
    bucket_seconds: int,
    metrics: Sequence[str],
    windows: dict[str, int],
    cumulative: bool,
) -> str:
    """Trailing sums of `metrics` over `buckets(key, bucket_number, metrics...)`.

    One row per key and change point: the end of every bucket with activity, and the moment that
    bucket leaves each window. `<metric>_<window>` sums the last `n` buckets before the row's
    time; with `cumulative`, `<metric>_total` sums every bucket before it. Linear: window frames
    over one timeline per key, no self-join.
    """
    offsets = sorted({0, *windows.values()})
    spread = ", ".join(f"if(offset = 0, {m}, 0) as {m}" for m in metrics)
    totals = ", ".join(f"sum({m}) as {m}" for m in metrics)
    frames = [
        f"w_{name} as (partition by {key} order by bucket_number "
        f"range between {size - 1} preceding and current row)"
        for name, size in windows.items()
    ]
    frames.append(
        f"w_total as (partition by {key} order by bucket_number "
        "rows between unbounded preceding and current row)"
    )
    columns = [
        f"toInt64(sum({m}) over w_{name}) as {m}_{name}" for name in windows for m in metrics
    ]
    columns += [
        f"toInt64(sum(has_activity) over w_{name}) as active_buckets_{name}" for name in windows
    ]
    if cumulative:
        columns += [f"toInt64(sum({m}) over w_total) as {m}_total" for m in metrics]
    return f"""
    timeline as (
        select {key}, bucket_number, {totals}, toUInt8(max(offset = 0)) as has_activity
        from (
            select {key}, bucket_number + offset as bucket_number, offset, {spread}
            from {buckets}
            array join [{", ".join(map(str, offsets))}] as offset
        )
        group by {key}, bucket_number
    ),
    windowed as (
        select
            {key},
            {_ts(f"(bucket_number + 1) * {bucket_seconds}")} as event_timestamp,
            {", ".join(columns)}
        from timeline
        window {", ".join(frames)}
    )"""


def _rate(numerator: str, denominator: str) -> str:
    return f"if(({denominator}) = 0, 0, ({numerator}) / ({denominator}))"


# --- users ------------------------------------------------------------------------------------

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
USER_ACTIVITY_WINDOWS = {"1d": 1, "7d": 7, "28d": 28}


def user_activity(db: Databases) -> str:
    """Per user and UTC day end: what the user did in the last 1, 7 and 28 days."""
    m = db.marts
    engagement_flags = ", ".join(
        f"toUInt64(engagement_type = '{t}') as {t}s" for t in ENGAGEMENT_TYPES
    )
    zeros = ", ".join(f"0 as {t}s" for t in ENGAGEMENT_TYPES)
    metric_sums = ", ".join(f"sum({x}) as {x}" for x in USER_ACTIVITY_METRICS)
    body = _windowed(
        "user_id", "daily", 86400, USER_ACTIVITY_METRICS, USER_ACTIVITY_WINDOWS, cumulative=False
    )
    rates = ", ".join(
        f"{_rate(f'engagements_{w}', f'impressions_{w}')} as engagement_rate_{w}, "
        f"{_rate(f'dwell_ms_{w}', f'impressions_{w}')} as avg_dwell_ms_{w}"
        for w in ("7d", "28d")
    )
    columns = [f"{x}_{w}" for w in USER_ACTIVITY_WINDOWS for x in USER_ACTIVITY_METRICS]
    return f"""
    with actions as (
        select viewer_id as user_id, impressed_at as at, toUInt64(1) as impressions,
            toUInt64(greatest(dwell_ms, 0)) as dwell_ms, toUInt64(0) as engagements, {zeros},
            toUInt64(0) as posts
        from {m}.fct_training_impressions
        union all
        select viewer_id, engaged_at, 0, 0, 1, {engagement_flags}, 0
        from {m}.fct_engagements
        union all
        select author_id, created_at, 0, 0, 0, {zeros}, 1
        from {m}.dim_posts
    ),
    daily as (
        select user_id, intDiv(toUnixTimestamp(at), 86400) as bucket_number, {metric_sums}
        from actions
        group by user_id, bucket_number
    ),
    {body}
    select
        user_id, event_timestamp, {", ".join(columns)},
        active_buckets_7d as active_days_7d, active_buckets_28d as active_days_28d,
        {rates}
    from windowed
    """


def user_content_preferences(db: Databases) -> str:
    """Per user and hour end: everything the user saw and engaged with, by media type, so far."""
    m = db.marts
    by_type = []
    for t in MEDIA_TYPES:
        by_type += [
            f"sumIf(impressions, media_type = '{t}') as impressions_{t}",
            f"sumIf(dwell_ms, media_type = '{t}') as dwell_ms_{t}",
            f"sumIf(engagements, media_type = '{t}') as engagements_{t}",
        ]
    cumulative = ", ".join(
        f"toInt64(sum({x}_{t}) over w) as {x}_{t}"
        for t in MEDIA_TYPES
        for x in ("impressions", "dwell_ms", "engagements")
    )
    total = " + ".join(f"engagements_{t}" for t in MEDIA_TYPES)
    features = []
    for t in MEDIA_TYPES:
        features += [
            f"impressions_{t}",
            f"engagements_{t}",
            f"{_rate(f'engagements_{t}', f'impressions_{t}')} as engagement_rate_{t}",
            f"{_rate(f'engagements_{t}', total)} as engagement_share_{t}",
            f"{_rate(f'dwell_ms_{t}', f'impressions_{t}')} as avg_dwell_ms_{t}",
        ]
    return f"""
    with posts as (
        select post_id, toString(media_type) as media_type from {m}.dim_posts
    ),
    actions as (
        select i.viewer_id as user_id, i.impressed_at as at, p.media_type as media_type,
            toUInt64(1) as impressions, toUInt64(greatest(i.dwell_ms, 0)) as dwell_ms,
            toUInt64(0) as engagements
        from {m}.fct_training_impressions as i
        inner join posts as p on i.post_id = p.post_id
        union all
        select e.viewer_id, e.engaged_at, p.media_type, 0, 0, 1
        from {m}.fct_engagements as e
        inner join posts as p on e.post_id = p.post_id
    ),
    hourly as (
        select user_id, toStartOfHour(at) as hour_at, {", ".join(by_type)}
        from actions
        group by user_id, hour_at
    ),
    cumulative as (
        select user_id, {_ts("hour_at + interval 1 hour")} as event_timestamp, {cumulative}
        from hourly
        window w as (partition by user_id order by hour_at rows between unbounded preceding and current row)
    )
    select user_id, event_timestamp, {", ".join(features)}
    from cumulative
    """


def user_profile(db: Databases) -> str:
    """Per user and profile event: the latest country and privacy as of it, and the signup time."""
    return f"""
    with profile_events as (
        select
            user_id,
            occurred_at,
            event_id,
            last_value(country) over w as country,
            last_value(is_private) over w as is_private,
            minIf(toNullable(occurred_at), event_type = 'user_created') over w as signed_up_at
        from {db.staging}.stg_raw__users
        window w as (partition by user_id order by occurred_at, event_id rows between unbounded preceding and current row)
    )
    select
        user_id, {_ts("occurred_at")} as event_timestamp, country, is_private,
        {_ts("assumeNotNull(signed_up_at)")} as signed_up_at
    from profile_events
    where signed_up_at is not null
    order by user_id, occurred_at desc, event_id desc
    limit 1 by user_id, occurred_at
    """


def _follow_transitions(db: Databases) -> str:
    """CTEs ending in `follow_transitions(follower_id, followee_id, occurred_at, is_following,
    delta)`: every instant a pair starts (+1) or stops (-1) following, with int_follow_graph's
    rules (a follow or an approval starts it; an unfollow or a block either way ends it; at one
    instant an end wins)."""
    return f"""
    relationship_events as (
        select * from {db.staging}.stg_raw__relationships
    ),
    follow_changes as (
        select actor_user_id as follower_id, target_user_id as followee_id, occurred_at, 1 as is_start
        from relationship_events where event_type = 'follow'
        union all
        select target_user_id, actor_user_id, occurred_at, 1
        from relationship_events where event_type = 'follow_approved'
        union all
        select actor_user_id, target_user_id, occurred_at, 0
        from relationship_events where event_type in ('unfollow', 'block')
        union all
        select target_user_id, actor_user_id, occurred_at, 0
        from relationship_events where event_type = 'block'
    ),
    pair_instants as (
        select follower_id, followee_id, occurred_at, toInt8(min(is_start)) as is_following
        from follow_changes
        group by follower_id, followee_id, occurred_at
    ),
    pair_states as (
        select
            follower_id, followee_id, occurred_at, is_following,
            is_following - lagInFrame(is_following, 1, toInt8(0)) over (
                partition by follower_id, followee_id order by occurred_at
                rows between unbounded preceding and current row
            ) as delta
        from pair_instants
    ),
    follow_transitions as (
        select * from pair_states where delta != 0
    )"""


def viewer_author_follow(db: Databases) -> str:
    """Per viewer x author and instant the viewer starts or stops following the author."""
    return f"""
    with {_follow_transitions(db)}
    select
        follower_id as user_id, followee_id as author_id, {_ts("occurred_at")} as event_timestamp,
        toBool(is_following) as is_following
    from follow_transitions
    """


def follow_counts(db: Databases, key: str) -> str:
    """Per user (named `key`) and instant a count changes: followers, accounts followed, tier.

    A row at signup says 0 and 0, so a user nobody follows has 0 followers, not a missing value.
    """
    tiers = dbt_vars()
    return f"""
    with {_follow_transitions(db)},
    count_changes as (
        select followee_id as user_id, occurred_at, delta as follower_delta, 0 as following_delta
        from follow_transitions
        union all
        select follower_id, occurred_at, 0, delta
        from follow_transitions
        union all
        select user_id, occurred_at, 0, 0
        from {db.staging}.stg_raw__users where event_type = 'user_created'
    ),
    instants as (
        select user_id, occurred_at, sum(follower_delta) as follower_delta,
            sum(following_delta) as following_delta
        from count_changes
        group by user_id, occurred_at
    ),
    counts as (
        select
            user_id, occurred_at,
            toInt64(sum(follower_delta) over w) as follower_count,
            toInt64(sum(following_delta) over w) as following_count
        from instants
        window w as (partition by user_id order by occurred_at rows between unbounded preceding and current row)
    )
    select
        user_id as {key}, {_ts("occurred_at")} as event_timestamp, follower_count, following_count,
        multiIf(
            follower_count >= {int(tiers["celebrity_min_followers"])}, 'celebrity',
            follower_count >= {int(tiers["popular_min_followers"])}, 'popular',
            'ordinary'
        ) as tier
    from counts
    """


# --- posts ------------------------------------------------------------------------------------


def post_attributes(db: Databases) -> str:
    """Per post, at its creation: what it is (media, size, text), known from the moment it exists."""
    return f"""
    select
        post_id,
        {_ts("created_at")} as event_timestamp,
        toString(media_type) as media_type,
        toInt64(media_count) as media_count,
        toInt64(first_media_width) as first_media_width,
        toInt64(first_media_height) as first_media_height,
        {_rate("first_media_width", "first_media_height")} as aspect_ratio,
        toInt64(first_media_width) * toInt64(first_media_height) as first_media_pixels,
        has_video,
        toInt64(total_duration_ms) as total_duration_ms,
        toInt64(hashtag_count) as hashtag_count,
        toInt64(length(mentioned_user_ids)) as mention_count,
        toInt64(caption_length) as caption_length,
        toBool(location_id is not null) as has_location,
        {_ts("created_at")} as created_at
    from {db.marts}.dim_posts
    """


# Media is processed online within seconds of the upload; a backfill processes it much later.
MEDIA_PROCESSING_SECONDS = 60


def post_media_quality(db: Databases) -> str:
    """Per post and instant one of its media was known processed: quality of the media processed
    so far (as dim_posts summarises it).

    Known at `processed_at`, but no later than MEDIA_PROCESSING_SECONDS after the post was
    created: online, the pipeline runs at upload, so a backfill (processing last week's posts
    today) must not make every training impression see the media as unprocessed when serving,
    reading today's online store, sees it processed.
    """
    return f"""
    with processed as (
        select
            media.post_id as post_id,
            least(
                media.processed_at,
                posts.created_at + toIntervalSecond({MEDIA_PROCESSING_SECONDS})
            ) as processed_at,
            sharpness, brightness, megapixels, blockiness,
            toUInt8(is_corrupt) as corrupt
        from {db.staging}.stg_media__objects as media
        inner join (select post_id, created_at from {db.marts}.dim_posts) as posts
            on posts.post_id = media.post_id
        where media.post_id is not null
    )
    select
        assumeNotNull(post_id) as post_id,
        {_ts("processed_at")} as event_timestamp,
        toInt64(count() over w) as processed_media_count,
        min(sharpness) over w as min_media_sharpness,
        avg(brightness) over w as mean_media_brightness,
        max(megapixels) over w as max_media_megapixels,
        max(blockiness) over w as max_media_blockiness,
        toBool(max(corrupt) over w) as has_corrupt_media
    from processed
    window w as (partition by post_id order by processed_at range between unbounded preceding and current row)
    order by post_id, event_timestamp desc
    limit 1 by post_id, event_timestamp
    """


POST_ENGAGEMENT_METRICS = ("likes", "comments", "shares", "saves", "engagements", "impressions")
POST_ENGAGEMENT_WINDOWS = {"1h": 1, "24h": 24}


def post_engagement(db: Databases) -> str:
    """Per post and hour end: engagements and impressions in the last 1 h, 24 h and in total."""
    m = db.marts
    flags = ", ".join(f"toUInt64(engagement_type = '{t}') as {t}s" for t in ENGAGEMENT_TYPES)
    zeros = ", ".join(f"0 as {t}s" for t in ENGAGEMENT_TYPES)
    sums = ", ".join(f"sum({x}) as {x}" for x in POST_ENGAGEMENT_METRICS)
    body = _windowed(
        "post_id", "hourly", 3600, POST_ENGAGEMENT_METRICS, POST_ENGAGEMENT_WINDOWS, cumulative=True
    )
    columns = [
        f"{x}_{w}" for w in (*POST_ENGAGEMENT_WINDOWS, "total") for x in POST_ENGAGEMENT_METRICS
    ]
    rates = ", ".join(
        f"{_rate(f'engagements_{w}', f'impressions_{w}')} as engagements_per_impression_{w}"
        for w in ("24h", "total")
    )
    return f"""
    with actions as (
        select post_id, engaged_at as at, {flags}, toUInt64(1) as engagements,
            toUInt64(0) as impressions
        from {m}.fct_engagements
        union all
        select post_id, impressed_at, {zeros}, 0, 1
        from {m}.fct_training_impressions
    ),
    hourly as (
        select post_id, intDiv(toUnixTimestamp(at), 3600) as bucket_number, {sums}
        from actions
        group by post_id, bucket_number
    ),
    {body}
    select post_id, event_timestamp, {", ".join(columns)}, {rates}
    from windowed
    """


def post_hashtag_trends(db: Databases) -> str:
    """Per post and hour end, from the hour before it was posted to 48 h after: the trend score
    of its hottest hashtag among those used in that hour (fct_hashtag_trends), and their volume.
    Hours in which none of its hashtags was used have no row; the view's short ttl then makes
    the value expire rather than linger."""
    m = db.marts
    return f"""
    with post_hashtags as (
        select distinct post_id, lower(hashtag) as hashtag, toStartOfHour(created_at) as post_hour_at
        from {m}.dim_posts
        array join hashtags as hashtag
    )
    select
        post_hashtags.post_id as post_id,
        {_ts("trends.hour_at + interval 1 hour")} as event_timestamp,
        max(trends.trending_score) as hashtag_trend_score,
        toInt64(sum(trends.posts)) as hashtag_trend_posts
    from post_hashtags
    inner join {m}.fct_hashtag_trends as trends on post_hashtags.hashtag = trends.hashtag
    where trends.hour_at >= post_hashtags.post_hour_at - interval 1 hour
        and trends.hour_at <= post_hashtags.post_hour_at + interval 48 hour
    group by post_id, event_timestamp
    """


# --- authors ----------------------------------------------------------------------------------


def author_stats(db: Databases) -> str:
    """Per author and hour end: what they published and what it received, so far (the history of
    fct_creator_stats; story views count when the story expires, as in fct_story_views)."""
    m = db.marts
    flags = ", ".join(
        f"toUInt64(engagement_type = '{t}') as {t}s_received" for t in ENGAGEMENT_TYPES
    )
    zeros = ", ".join(f"0 as {t}s_received" for t in ENGAGEMENT_TYPES)
    metrics = (
        "posts",
        "stories",
        *(f"{t}s_received" for t in ENGAGEMENT_TYPES),
        "engagements_received",
        "impressions",
        "story_views",
    )
    sums = ", ".join(f"sum({x}) as {x}" for x in metrics)
    cumulative = ", ".join(f"toInt64(sum({x}) over w) as {x}" for x in metrics)
    return f"""
    with actions as (
        select author_id, created_at as at, toUInt64(1) as posts, toUInt64(0) as stories, {zeros},
            toUInt64(0) as engagements_received, toUInt64(0) as impressions, toUInt64(0) as story_views
        from {m}.dim_posts
        union all
        select author_id, created_at, 0, 1, {zeros}, 0, 0, 0
        from {m}.fct_story_views
        union all
        select author_id, expires_at, 0, 0, {zeros}, 0, 0, ifNull(views, 0)
        from {m}.fct_story_views
        union all
        select author_id, engaged_at, 0, 0, {flags}, 1, 0, 0
        from {m}.fct_engagements
        union all
        select author_id, impressed_at, 0, 0, {zeros}, 0, 1, 0
        from {m}.fct_training_impressions
    ),
    hourly as (
        select author_id, toStartOfHour(at) as hour_at, {sums}
        from actions
        group by author_id, hour_at
    ),
    cumulative as (
        select author_id, {_ts("hour_at + interval 1 hour")} as event_timestamp, {cumulative}
        from hourly
        window w as (partition by author_id order by hour_at rows between unbounded preceding and current row)
    )
    select
        author_id, event_timestamp, posts, stories,
        {", ".join(f"{t}s_received" for t in ENGAGEMENT_TYPES)}, impressions, story_views,
        {_rate("engagements_received", "impressions")} as engagements_per_impression,
        {_rate("likes_received", "posts")} as likes_per_post
    from cumulative
    """


# --- viewer x author ----------------------------------------------------------------------------


def viewer_author_affinity(db: Databases) -> str:
    """Per viewer x author and instant the viewer engages with the author's post: interactions so
    far and fct_user_author_affinity's decayed score as of that instant (same weights, same half
    life). An on-demand view decays it further to request time."""
    v = dbt_vars()
    weights = v["affinity_weights"]
    half_life_ms = float(v["affinity_half_life_days"]) * 86_400_000
    weight = (
        "multiIf("
        + ", ".join(f"engagement_type = '{t}', {float(w)}" for t, w in weights.items())
        + ", 0.0)"
    )
    counts = ", ".join(f"countIf(engagement_type = '{t}') as {t}s" for t in weights)
    cumulative = ", ".join(f"toInt64(sum({t}s) over w) as {t}s" for t in weights)
    # score(t) = sum_i w_i 2^-((t - t_i)/h) = 2^-((t - t0)/h) * sum_i w_i 2^((t_i - t0)/h): a
    # running sum per pair, with t0 the pair's first interaction to keep the exponents small
    return f"""
    with engagements as (
        select viewer_id, author_id, engagement_type, engaged_at
        from {db.marts}.fct_engagements
        where viewer_id != author_id
    ),
    firsts as (
        select viewer_id, author_id, min(engaged_at) as first_at
        from engagements group by viewer_id, author_id
    ),
    instants as (
        select
            e.viewer_id as viewer_id, e.author_id as author_id, e.engaged_at as engaged_at,
            sum({weight} * exp2(dateDiff('millisecond', f.first_at, e.engaged_at) / {half_life_ms}))
                as scaled_weight,
            count() as interactions, {counts},
            any(f.first_at) as first_at
        from engagements as e
        inner join firsts as f on e.viewer_id = f.viewer_id and e.author_id = f.author_id
        group by viewer_id, author_id, engaged_at
    )
    select
        viewer_id as user_id,
        author_id,
        {_ts("engaged_at")} as event_timestamp,
        sum(scaled_weight) over w
            * exp2(-dateDiff('millisecond', first_at, engaged_at) / {half_life_ms}) as affinity_score,
        toInt64(sum(interactions) over w) as interactions,
        {cumulative},
        {_ts("engaged_at")} as last_interaction_at
    from instants
    window w as (partition by viewer_id, author_id order by engaged_at rows between unbounded preceding and current row)
    """
