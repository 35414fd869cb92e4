{{ config(order_by='(author_id, event_timestamp)') }}

{%- set received = [] -%}
{%- for t in engagement_types() %}{% do received.append(t ~ 's_received') %}{% endfor -%}
{%- set metrics = ['posts', 'stories'] + received + ['engagements_received', 'impressions', 'story_views'] -%}

-- one row per author and hour end with activity: what they published and what it received so
-- far (the history of fct_creator_stats; story views count when the story expires, as in
-- fct_story_views)
with actions as (
    select author_id, created_at as at, toUInt64(1) as posts, toUInt64(0) as stories,
        {%- for r in received %} 0 as {{ r }},{% endfor %}
        toUInt64(0) as engagements_received, toUInt64(0) as impressions, toUInt64(0) as story_views
    from {{ ref('dim_posts') }}
    union all
    select author_id, created_at, 0, 1,{% for r in received %} 0 as {{ r }},{% endfor %} 0, 0, 0
    from {{ ref('fct_story_views') }}
    union all
    select author_id, expires_at, 0, 0,{% for r in received %} 0 as {{ r }},{% endfor %} 0, 0, ifNull(views, 0)
    from {{ ref('fct_story_views') }}
    union all
    select author_id, engaged_at, 0, 0,
        {%- for t in engagement_types() %} toUInt64(engagement_type = '{{ t }}') as {{ t }}s_received,{% endfor %} 1, 0, 0
    from {{ ref('fct_engagements') }}
    union all
    select author_id, impressed_at, 0, 0,{% for r in received %} 0 as {{ r }},{% endfor %} 0, 1, 0
    from {{ ref('fct_training_impressions') }}
),

hourly as (
    select author_id, toStartOfHour(at) as hour_at
        {%- for m in metrics %}, sum({{ m }}) as {{ m }}{% endfor %}
    from actions
    group by author_id, hour_at
),

cumulative as (
    select author_id, {{ ms_utc('hour_at + interval 1 hour') }} as event_timestamp
        {%- for m in metrics %}, toInt64(sum({{ m }}) over w) as {{ m }}{% endfor %}
    from hourly
    window w as (partition by author_id order by hour_at rows between unbounded preceding and current row)
)

select
    author_id,
    event_timestamp,
    posts,
    stories,
    {%- for r in received %}
    {{ r }},
    {%- endfor %}
    impressions,
    story_views,
    {{ safe_rate('engagements_received', 'impressions') }} as engagements_per_impression,
    {{ safe_rate('likes_received', 'posts') }} as likes_per_post
from cumulative
