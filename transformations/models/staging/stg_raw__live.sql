-- one row per live broadcast event (live_started), deduplicated by event_id
select
    event_id,
    event_type,
    user_id as broadcaster_id,
    live_id,
    title,
    occurred_at,
    _received_at as received_at,
    _ingested_at as ingested_at
from {{ source('raw', 'live') }} final
