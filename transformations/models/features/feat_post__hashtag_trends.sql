{{ config(order_by='(post_id, event_timestamp)') }}

-- one row per post and hour end, from the hour before it was posted to 48 h after, in which one
-- of its hashtags was used: the trend score of its hottest hashtag in that hour
-- and their volume, as the trend stood at the row's event_timestamp (int_hashtag_trends'
-- 'hour_end' viewpoint: posts deleted or made private later still count, earlier ones do not).
-- Hours without a row let the feature view's short ttl expire the value rather than let it
-- linger.
-- Linear: each hashtag x posting hour is expanded into its 50 hours (-1 h .. +48 h) and joined on
-- (hashtag, hour). Joining on the hashtag alone and filtering the hours after (as before) made
-- every post meet every hour its hashtag was ever used in: posts x hours of data, quadratic in
-- the days and growing with the density of hashtags per hour.
with post_hashtags as (
    select distinct post_id, lower(hashtag) as hashtag, toStartOfHour(created_at) as post_hour_at
    from {{ ref('dim_posts') }}
    array join hashtags as hashtag
),

-- the posts of one hashtag and posting hour share their 50 hours: expanded once per group
tag_hours as (
    select hashtag, post_hour_at + toIntervalHour(hour_offset) as hour_at, post_ids
    from (
        select hashtag, post_hour_at, groupArray(post_id) as post_ids
        from post_hashtags
        group by hashtag, post_hour_at
    )
    array join range(-1, 49) as hour_offset
),

trends as (
    select hashtag, hour_at, trending_score, posts
    from {{ ref('int_hashtag_trends') }}
    where as_of = 'hour_end'
),

matched as (
    select tag_hours.post_ids as post_ids, trends.hour_at as hour_at,
        trends.trending_score as trending_score, trends.posts as posts
    from tag_hours
    inner join trends
        on tag_hours.hashtag = trends.hashtag
        and tag_hours.hour_at = trends.hour_at
)

select
    post_id,
    {{ ms_utc('hour_at + interval 1 hour') }} as event_timestamp,
    max(trending_score) as hashtag_trend_score,
    toInt64(sum(posts)) as hashtag_trend_posts
from matched
array join post_ids as post_id
group by post_id, event_timestamp
