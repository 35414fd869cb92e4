-- one row per view event (impression of a post, story_view), deduplicated by event_id
select
    event_id,
    event_type,
    user_id as viewer_id,
    post_id,
    story_id,
    surface,
    position,
    dwell_ms,
    request_id,
    experiment,
    arm,
    explored,
    occurred_at,
    _received_at as received_at,
    _ingested_at as ingested_at
from {{ source('raw', 'views') }} final
