{{ config(order_by='(hashtag, hour_at)', partition_by='toYYYYMM(hour_at)') }}

-- one row per hashtag (lower-cased) and UTC hour in which posts used it: volume (posts), the
-- velocity against the previous hour (volume - volume of the hour before, 0 when unused), the
-- baseline (posts per hour over the up to 24 hours of data before: fewer at the start of the
-- data, 0 in its first hour) and trending_score = (volume - baseline) / sqrt(baseline + 1).
-- Public trending: only undeleted posts of accounts that are public now count, and never a post
-- hidden by moderation (dim_posts.is_moderation_hidden, the one home of that rule), so a tag used
-- only in private, deleted or moderated content never trends (nor reaches autocomplete through
-- this table).
with post_hashtags as (
    select distinct
        posts.post_id as post_id,
        posts.author_id as author_id,
        lower(hashtag) as hashtag,
        toStartOfHour(posts.created_at) as hour_at
    from {{ ref('int_posts') }} as posts
    array join posts.hashtags as hashtag
    where not posts.is_deleted
        and posts.author_id not in (select user_id from {{ ref('dim_users') }} where is_private)
        and posts.post_id not in (
            select post_id from {{ ref('dim_posts') }} where is_moderation_hidden
        )
),

hourly_volumes as (
    select
        hashtag,
        hour_at,
        intDiv(toUnixTimestamp(hour_at), 3600) as hour_number,
        count() as posts,
        uniqExact(author_id) as authors
    from post_hashtags
    group by hashtag, hour_at
),

first_hour as (
    select min(hour_number) as first_hour_number from hourly_volumes
),

windowed_volumes as (
    select
        hourly_volumes.*,
        least(24, hourly_volumes.hour_number - first_hour.first_hour_number) as history_hours,
        sum(posts) over (
            partition by hashtag order by hour_number range between 1 preceding and 1 preceding
        ) as previous_hour_posts,
        sum(posts) over (
            partition by hashtag order by hour_number range between 24 preceding and 1 preceding
        ) as previous_24h_posts
    from hourly_volumes
    cross join first_hour
),

baselines as (
    select
        *,
        if(history_hours = 0, 0, previous_24h_posts / history_hours) as baseline_posts_per_hour
    from windowed_volumes
)

select
    hashtag,
    hour_at,
    posts,
    authors,
    previous_hour_posts,
    toInt64(posts) - toInt64(previous_hour_posts) as velocity,
    baseline_posts_per_hour,
    (posts - baseline_posts_per_hour) / sqrt(baseline_posts_per_hour + 1) as trending_score
from baselines
