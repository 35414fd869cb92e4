-- one row per user event (user_created, profile_updated), deduplicated by event_id
select
    event_id,
    event_type,
    user_id,
    username,
    is_private,
    country,
    city,
    latitude,
    longitude,
    -- topics picked at signup, sorted and comma-joined (null when none were given)
    nullIf(arrayStringConcat(arraySort(interests), ','), '') as interests,
    bio,
    occurred_at,
    _received_at as received_at,
    _ingested_at as ingested_at
from {{ source('raw', 'users') }} final
