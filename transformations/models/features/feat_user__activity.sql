{{ config(order_by='(user_id, event_timestamp)') }}

{%- set metrics = ['impressions', 'dwell_ms', 'engagements', 'likes', 'comments', 'shares', 'saves', 'posts'] -%}
{%- set windows = [['1d', 1], ['7d', 7], ['28d', 28]] -%}

-- one row per user and UTC day end (and each day a day leaves a window): what the user did in
-- the last 1, 7 and 28 days. Stamped at the end of the day, so a day never joins to an
-- impression inside it.
with actions as (
    select viewer_id as user_id, impressed_at as at, toUInt64(1) as impressions,
        toUInt64(greatest(dwell_ms, 0)) as dwell_ms, toUInt64(0) as engagements,
        {%- for t in engagement_types() %} 0 as {{ t }}s,{% endfor %}
        toUInt64(0) as posts
    from {{ ref('fct_training_impressions') }}
    union all
    select viewer_id, engaged_at, 0, 0, 1,
        {%- for t in engagement_types() %} toUInt64(engagement_type = '{{ t }}') as {{ t }}s,{% endfor %} 0
    from {{ ref('fct_engagements') }}
    union all
    select author_id, created_at, 0, 0, 0,{% for t in engagement_types() %} 0 as {{ t }}s,{% endfor %} 1
    from {{ ref('dim_posts') }}
),

daily as (
    select user_id, intDiv(toUnixTimestamp(at), 86400) as bucket_number
        {%- for m in metrics %}, sum({{ m }}) as {{ m }}{% endfor %}
    from actions
    group by user_id, bucket_number
),

{{ trailing_windows('user_id', 'daily', 86400, metrics, windows, false) }}

select
    user_id,
    event_timestamp,
    {%- for name, size in windows %}{% for m in metrics %}
    {{ m }}_{{ name }},
    {%- endfor %}{% endfor %}
    active_buckets_7d as active_days_7d,
    active_buckets_28d as active_days_28d
    {%- for w in ['7d', '28d'] %},
    {{ safe_rate('engagements_' ~ w, 'impressions_' ~ w) }} as engagement_rate_{{ w }},
    {{ safe_rate('dwell_ms_' ~ w, 'impressions_' ~ w) }} as avg_dwell_ms_{{ w }}
    {%- endfor %}
from windowed
