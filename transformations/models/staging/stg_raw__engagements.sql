-- one row per engagement event (like, unlike, comment, share, save), deduplicated by event_id
select
    event_id,
    event_type,
    user_id as viewer_id,
    post_id,
    comment_id,
    parent_comment_id,
    text as comment_text,
    channel as share_channel,
    occurred_at,
    _received_at as received_at,
    _ingested_at as ingested_at
from {{ source('raw', 'engagements') }} final
