{{ config(order_by='(as_of, hashtag, hour_at)') }}

-- one row per viewpoint (as_of), hashtag (lower-cased) and UTC hour in which public posts used
-- it: the trend rule, written once for both viewpoints. Public: the post was not deleted and
-- its author's account was not private (int_account_privacy; authors without a record count
-- as public) at the instant the trend is seen, and, in the latest viewpoint, not hidden by
-- moderation (the is_moderation_hidden macro, dim_posts' rule; when the decision was made is not
-- recorded, so the point-in-time viewpoint does not apply it):
--   as_of = 'hour_end': at the end of the hour, so a feature row stamped then (point in time)
--     counts a post deleted later and not one deleted before;
--   as_of = 'latest': today's state, for what is shown as trending now (fct_hashtag_trends).
-- posts: the volume; velocity = posts - posts of the previous hour; baseline: posts per hour
-- over the up to 24 hours of data before (data starts at the first post; 0 in its first hour);
-- trending_score = (posts - baseline) / sqrt(baseline + 1).
with hashtag_uses as (
    select distinct
        posts.post_id as post_id,
        posts.author_id as author_id,
        posts.deleted_at as deleted_at,
        lower(hashtag) as hashtag,
        toStartOfHour(posts.created_at) as hour_at
    from {{ ref('int_posts') }} as posts
    array join posts.hashtags as hashtag
),

moderated_posts as (
    select post_id
    from {{ ref('stg_media__objects') }}
    where post_id is not null
    group by post_id
    having {{ is_moderation_hidden('max(nsfw_score)') }}
),

data_start as (
    select toStartOfHour(min(created_at)) as first_hour_at from {{ ref('int_posts') }}
),

-- each use counts in its own hour (hours_before = 0) and in the baseline of the 24 hours after
evaluations as (
    select
        hashtag_uses.*,
        hours_before,
        as_of,
        hashtag_uses.hour_at + toIntervalHour(hours_before) as evaluated_hour_at,
        if(
            as_of = 'latest',
            toDateTime64('2299-12-31 23:59:59', 3, 'UTC'),
            toDateTime64(evaluated_hour_at + interval 1 hour, 3, 'UTC')
        ) as seen_at
    from hashtag_uses
    array join range(25) as hours_before
    array join ['hour_end', 'latest'] as as_of
),

-- privacy as of seen_at: the period in effect then (ASOF: the latest that began at or before);
-- empty periods (two settings at one instant) are skipped so the later one decides
privacy_periods as (
    select user_id, is_private, valid_from
    from {{ ref('int_account_privacy') }}
    where valid_until is null or valid_until > valid_from
),

public_evaluations as (
    select
        evaluations.as_of as as_of,
        evaluations.hashtag as hashtag,
        evaluations.evaluated_hour_at as hour_at,
        evaluations.hours_before as hours_before,
        evaluations.author_id as author_id,
        (evaluations.deleted_at is null or evaluations.deleted_at > evaluations.seen_at)
        and not ifNull(privacy_periods.is_private, false)
        and not (
            evaluations.as_of = 'latest'
            and evaluations.post_id in (select post_id from moderated_posts)
        ) as is_public
    from evaluations
    asof left join privacy_periods
        on evaluations.author_id = privacy_periods.user_id
        and evaluations.seen_at >= privacy_periods.valid_from
),

hourly_counts as (
    select
        as_of,
        hashtag,
        hour_at,
        countIf(is_public and hours_before = 0) as posts,
        uniqExactIf(author_id, is_public and hours_before = 0) as authors,
        countIf(is_public and hours_before = 1) as previous_hour_posts,
        countIf(is_public and hours_before >= 1) as previous_24h_posts
    from public_evaluations
    group by as_of, hashtag, hour_at
    having posts > 0
),

baselines as (
    select
        hourly_counts.*,
        least(24, dateDiff('hour', data_start.first_hour_at, hourly_counts.hour_at)) as history_hours,
        if(history_hours = 0, 0, previous_24h_posts / history_hours) as baseline_posts_per_hour
    from hourly_counts
    cross join data_start
)

select
    as_of,
    hashtag,
    hour_at,
    posts,
    authors,
    previous_hour_posts,
    toInt64(posts) - toInt64(previous_hour_posts) as velocity,
    baseline_posts_per_hour,
    (posts - baseline_posts_per_hour) / sqrt(baseline_posts_per_hour + 1) as trending_score
from baselines
