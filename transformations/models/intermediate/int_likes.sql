{{ config(order_by='(post_id, viewer_id)') }}

-- one row per viewer x post liked now: the latest of like / unlike is a like (like, unlike, like
-- again counts once; at one instant the unlike wins); like_event_id and liked_at are those of the
-- standing like (of two at one instant, the one with the least event_id: macro toggle_instants)
select
    event_id as like_event_id,
    viewer_id,
    post_id,
    occurred_at as liked_at,
    received_at
from (
    {{ standing_toggles(ref('stg_raw__engagements'), 'like', 'unlike',
                        ['viewer_id', 'post_id'], ['event_id', 'received_at']) }}
)
