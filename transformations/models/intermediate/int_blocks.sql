{{ config(order_by='(blocker_id, blocked_id)') }}

-- one row per blocker x blocked user currently blocked (the latest of block / unblock is a block)
with block_changes as (
    select
        actor_user_id as blocker_id,
        target_user_id as blocked_id,
        occurred_at,
        event_type = 'block' as is_block
    from {{ ref('stg_raw__relationships') }}
    where event_type in ('block', 'unblock')
),

pair_states as (
    select
        blocker_id,
        blocked_id,
        argMax(is_block, (occurred_at, not is_block)) as is_blocked,
        maxIf(occurred_at, is_block) as blocked_at
    from block_changes
    group by blocker_id, blocked_id
)

select blocker_id, blocked_id, blocked_at
from pair_states
where is_blocked
