{{ config(order_by='(user_id, event_timestamp)') }}

{%- set media_types = var('media_types') -%}

-- one row per user and hour end with activity: everything the user saw and engaged with so
-- far, by media type
with posts as (
    select post_id, toString(media_type) as media_type from {{ ref('dim_posts') }}
),

actions as (
    select i.viewer_id as user_id, i.impressed_at as at, p.media_type as media_type,
        toUInt64(1) as impressions, toUInt64(greatest(i.dwell_ms, 0)) as dwell_ms,
        toUInt64(0) as engagements
    from {{ ref('fct_training_impressions') }} as i
    inner join posts as p on i.post_id = p.post_id
    union all
    select e.viewer_id, e.engaged_at, p.media_type, 0, 0, 1
    from {{ ref('fct_engagements') }} as e
    inner join posts as p on e.post_id = p.post_id
),

hourly as (
    select user_id, toStartOfHour(at) as hour_at
        {%- for t in media_types %},
        sumIf(impressions, media_type = '{{ t }}') as impressions_{{ t }},
        sumIf(dwell_ms, media_type = '{{ t }}') as dwell_ms_{{ t }},
        sumIf(engagements, media_type = '{{ t }}') as engagements_{{ t }}
        {%- endfor %}
    from actions
    group by user_id, hour_at
),

cumulative as (
    select user_id, {{ ms_utc('hour_at + interval 1 hour') }} as event_timestamp
        {%- for t in media_types %}{% for x in ['impressions', 'dwell_ms', 'engagements'] %},
        toInt64(sum({{ x }}_{{ t }}) over w) as {{ x }}_{{ t }}
        {%- endfor %}{% endfor %}
    from hourly
    window w as (partition by user_id order by hour_at rows between unbounded preceding and current row)
)

{%- set total = [] -%}
{%- for t in media_types %}{% do total.append('engagements_' ~ t) %}{% endfor %}

select
    user_id,
    event_timestamp
    {%- for t in media_types %},
    impressions_{{ t }},
    engagements_{{ t }},
    {{ safe_rate('engagements_' ~ t, 'impressions_' ~ t) }} as engagement_rate_{{ t }},
    {{ safe_rate('engagements_' ~ t, total | join(' + ')) }} as engagement_share_{{ t }},
    {{ safe_rate('dwell_ms_' ~ t, 'impressions_' ~ t) }} as avg_dwell_ms_{{ t }}
    {%- endfor %}
from cumulative
