-- one row per direct message event (story_reply), deduplicated by event_id
select
    event_id,
    event_type,
    user_id as sender_id,
    story_id,
    target_user_id as recipient_id,
    text,
    occurred_at,
    _received_at as received_at,
    _ingested_at as ingested_at
from {{ source('raw', 'messages') }} final
