{{ config(order_by='post_id') }}

{%- set engagement_types = ['like', 'comment', 'share', 'save'] -%}
{%- set windows = [('1h', 1), ('24h', 24), ('7d', 168)] -%}

-- one row per post: standing likes, comments, shares, saves and impressions, in total and within
-- 1 h / 24 h / 7 d of posting (a window includes its end: an impression exactly 1 h after the
-- post counts in impressions_1h), and engagement_rate = engaged impressions / impressions
with posts as (
    select post_id, author_id, created_at, is_deleted from {{ ref('int_posts') }}
),

engagement_counts as (
    select
        engagements.post_id as post_id,
        {%- for engagement_type in engagement_types %}
        countIf(engagements.engagement_type = '{{ engagement_type }}') as {{ engagement_type }}s,
        {%- for window_name, hours in windows %}
        countIf(
            engagements.engagement_type = '{{ engagement_type }}'
            and engagements.engaged_at <= posts.created_at + interval {{ hours }} hour
        ) as {{ engagement_type }}s_{{ window_name }},
        {%- endfor %}
        {%- endfor %}
        count() as engagements
    from {{ ref('fct_engagements') }} as engagements
    inner join posts on engagements.post_id = posts.post_id
    group by engagements.post_id
),

impression_counts as (
    select
        impressions.post_id as post_id,
        count() as impressions,
        {%- for window_name, hours in windows %}
        countIf(impressions.impressed_at <= posts.created_at + interval {{ hours }} hour) as impressions_{{ window_name }},
        {%- endfor %}
        countIf(impressions.is_engaged) as engaged_impressions,
        uniqExact(impressions.viewer_id) as reach
    from {{ ref('fct_training_impressions') }} as impressions
    inner join posts on impressions.post_id = posts.post_id
    group by impressions.post_id
)

select
    posts.post_id as post_id,
    posts.author_id as author_id,
    posts.created_at as created_at,
    posts.is_deleted as is_deleted,
    {%- for engagement_type in engagement_types %}
    engagement_counts.{{ engagement_type }}s as {{ engagement_type }}s,
    {%- for window_name, hours in windows %}
    engagement_counts.{{ engagement_type }}s_{{ window_name }} as {{ engagement_type }}s_{{ window_name }},
    {%- endfor %}
    {%- endfor %}
    engagement_counts.engagements as engagements,
    impression_counts.impressions as impressions,
    {%- for window_name, hours in windows %}
    impression_counts.impressions_{{ window_name }} as impressions_{{ window_name }},
    {%- endfor %}
    impression_counts.engaged_impressions as engaged_impressions,
    impression_counts.reach as reach,
    if(impression_counts.impressions = 0, 0, impression_counts.engaged_impressions / impression_counts.impressions) as engagement_rate
from posts
left join engagement_counts on posts.post_id = engagement_counts.post_id
left join impression_counts on posts.post_id = impression_counts.post_id
