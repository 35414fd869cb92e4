-- one row per settings event (notification_preferences_updated), deduplicated by event_id; a preference left out of the event is null (unchanged)
select
    event_id,
    event_type,
    user_id,
    likes,
    comments,
    follows,
    follow_requests,
    mentions,
    story_replies,
    live,
    digests,
    occurred_at,
    _received_at as received_at,
    _ingested_at as ingested_at
from {{ source('raw', 'settings') }} final
