{{ config(order_by='(post_id, event_timestamp)') }}

{%- set metrics = ['likes', 'comments', 'shares', 'saves', 'engagements', 'impressions'] -%}
{%- set windows = [['1h', 1], ['24h', 24]] -%}

-- one row per post and hour end (and each hour an hour leaves a window): engagements and
-- impressions in the last 1 h, 24 h and in total
with actions as (
    select post_id, engaged_at as at,
        {%- for t in engagement_types() %} toUInt64(engagement_type = '{{ t }}') as {{ t }}s,{% endfor %}
        toUInt64(1) as engagements, toUInt64(0) as impressions
    from {{ ref('fct_engagements') }}
    union all
    select post_id, impressed_at,{% for t in engagement_types() %} 0 as {{ t }}s,{% endfor %} 0, 1
    from {{ ref('fct_training_impressions') }}
),

hourly as (
    select post_id, intDiv(toUnixTimestamp(at), 3600) as bucket_number
        {%- for m in metrics %}, sum({{ m }}) as {{ m }}{% endfor %}
    from actions
    group by post_id, bucket_number
),

{{ trailing_windows('post_id', 'hourly', 3600, metrics, windows, true) }}

select
    post_id,
    event_timestamp
    {%- for name in ['1h', '24h', 'total'] %}{% for m in metrics %},
    {{ m }}_{{ name }}
    {%- endfor %}{% endfor %}
    {%- for w in ['24h', 'total'] %},
    {{ safe_rate('engagements_' ~ w, 'impressions_' ~ w) }} as engagements_per_impression_{{ w }}
    {%- endfor %}
from windowed
