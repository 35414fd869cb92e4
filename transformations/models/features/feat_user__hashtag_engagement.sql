{{ config(order_by='(user_id, event_timestamp)') }}

{%- set buckets = var('hashtag_buckets') -%}

-- one row per viewer and instant of an engagement with a post that has hashtags: how many of the
-- viewer's engagements so far went to each hashtag bucket (hashtags hashed into
-- var('hashtag_buckets') buckets, so the table has a fixed width) and in total. With
-- feat_post__hashtag_buckets it gives the viewer x hashtag affinity at request time
-- (feature_repo.request_time.hashtag_affinity_arrays).
with tagged as (
    select e.viewer_id as user_id, e.engaged_at as at, {{ hashtag_bucket('tag') }} as bucket
    from {{ ref('fct_engagements') }} as e
    inner join {{ ref('dim_posts') }} as p on e.post_id = p.post_id
    array join p.hashtags as tag
),

per_instant as (
    select user_id, at
        {%- for b in range(buckets) %},
        countIf(bucket = {{ b }}) as tags_{{ b }}
        {%- endfor %},
        count() as tags_total
    from tagged
    group by user_id, at
)

select
    user_id,
    {{ ms_utc('at') }} as event_timestamp
    {%- for b in range(buckets) %},
    toInt64(sum(tags_{{ b }}) over w) as engaged_tags_{{ b }}
    {%- endfor %},
    toInt64(sum(tags_total) over w) as engaged_tags_total
from per_instant
window w as (partition by user_id order by at rows between unbounded preceding and current row)
