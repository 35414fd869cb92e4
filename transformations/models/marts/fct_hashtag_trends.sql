{{ config(order_by='(hashtag, hour_at)', partition_by='toYYYYMM(hour_at)') }}

-- one row per hashtag (lower-cased) and UTC hour in which public posts used it, by today's
-- state: a tag used only in content that is private, deleted or hidden by moderation now never trends (nor reaches
-- autocomplete through this table). The rule lives in int_hashtag_trends; feature tables read
-- its point-in-time viewpoint instead.
select
    hashtag,
    hour_at,
    posts,
    authors,
    previous_hour_posts,
    velocity,
    baseline_posts_per_hour,
    trending_score
from {{ ref('int_hashtag_trends') }}
where as_of = 'latest'
