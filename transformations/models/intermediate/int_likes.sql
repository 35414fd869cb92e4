{{ config(order_by='(post_id, viewer_id)') }}

-- one row per viewer x post liked now: the latest of like / unlike is a like (like, unlike, like
-- again counts once); like_event_id and liked_at are those of the standing like
with like_changes as (
    select event_id, viewer_id, post_id, occurred_at, received_at, event_type = 'like' as is_like
    from {{ ref('stg_raw__engagements') }}
    where event_type in ('like', 'unlike')
),

pair_states as (
    -- the latest change decides; on a tie the unlike wins
    select
        viewer_id,
        post_id,
        argMax(tuple(is_like, event_id, occurred_at, received_at), (occurred_at, not is_like)) as latest_change
    from like_changes
    group by viewer_id, post_id
)

select
    tupleElement(latest_change, 2) as like_event_id,
    viewer_id,
    post_id,
    tupleElement(latest_change, 3) as liked_at,
    tupleElement(latest_change, 4) as received_at
from pair_states
where tupleElement(latest_change, 1)
