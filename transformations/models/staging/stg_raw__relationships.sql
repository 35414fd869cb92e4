-- one row per relationship event between two users, deduplicated by event_id;
-- actor_user_id acted on target_user_id (for follow_approved the actor is the private account
-- that approves and the target is the requester)
select
    event_id,
    event_type,
    user_id as actor_user_id,
    target_user_id,
    occurred_at,
    _received_at as received_at,
    _ingested_at as ingested_at
from {{ source('raw', 'relationships') }} final
