{{ config(order_by='(post_id, event_timestamp)') }}

{%- set buckets = var('hashtag_buckets') -%}

-- one row per post with hashtags, at its creation: how many of its hashtags fall in each bucket
-- (the hashing of feat_user__hashtag_engagement). A post without hashtags has no row: its
-- viewer x hashtag affinity is 0, not an error.
with tagged as (
    select post_id, created_at, {{ hashtag_bucket('tag') }} as bucket
    from {{ ref('dim_posts') }}
    array join hashtags as tag
)

select
    post_id,
    {{ ms_utc('created_at') }} as event_timestamp
    {%- for b in range(buckets) %},
    toInt64(countIf(bucket = {{ b }})) as tags_{{ b }}
    {%- endfor %}
from tagged
group by post_id, created_at
