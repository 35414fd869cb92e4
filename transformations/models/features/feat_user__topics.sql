{{ config(order_by='(user_id, event_timestamp)') }}

-- one row per user and instant of a profile event that carries signup topics: 1 for each topic
-- the user picked, as numbers so the viewer x post topic match is array arithmetic at request
-- time (feature_repo.request_time.topic_match_arrays), not string parsing
select
    user_id,
    {{ ms_utc('occurred_at') }} as event_timestamp
    {%- for topic in var('topics') %},
    toInt64(has(splitByChar(',', interests), '{{ topic }}')) as picked_{{ topic }}
    {%- endfor %}
from {{ ref('stg_raw__users') }}
where interests is not null
order by user_id, occurred_at desc, event_id desc
limit 1 by user_id, occurred_at
