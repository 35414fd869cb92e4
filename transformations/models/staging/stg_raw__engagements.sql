-- one row per engagement event (like, unlike, comment, share, save), deduplicated by event_id
select
    event_id,
    event_type,
    occurred_at,
    user_id as viewer_id,
    post_id,
    comment_id,
    parent_comment_id,
    text as comment_text,
    channel as share_channel,
    _received_at as received_at
from {{ source('raw', 'engagements') }} final
