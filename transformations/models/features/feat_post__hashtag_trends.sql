{{ config(order_by='(post_id, event_timestamp)') }}

-- one row per post and hour end, from the hour before it was posted to 48 h after, in which one
-- of its hashtags was used: the trend score of its hottest hashtag in that hour
-- and their volume, as the trend stood at the row's event_timestamp (int_hashtag_trends'
-- 'hour_end' viewpoint: posts deleted or made private later still count, earlier ones do not).
-- Hours without a row let the feature view's short ttl expire the value rather than let it
-- linger.
with post_hashtags as (
    select distinct post_id, lower(hashtag) as hashtag, toStartOfHour(created_at) as post_hour_at
    from {{ ref('dim_posts') }}
    array join hashtags as hashtag
)

select
    post_hashtags.post_id as post_id,
    {{ ms_utc('trends.hour_at + interval 1 hour') }} as event_timestamp,
    max(trends.trending_score) as hashtag_trend_score,
    toInt64(sum(trends.posts)) as hashtag_trend_posts
from post_hashtags
inner join (
    select * from {{ ref('int_hashtag_trends') }} where as_of = 'hour_end'
) as trends on post_hashtags.hashtag = trends.hashtag
where trends.hour_at >= post_hashtags.post_hour_at - interval 1 hour
    and trends.hour_at <= post_hashtags.post_hour_at + interval 48 hour
group by post_id, event_timestamp
