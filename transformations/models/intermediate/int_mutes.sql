{{ config(order_by='(muter_id, muted_id)') }}

-- one row per muter x muted user currently muted (the latest of mute / unmute is a mute)
with mute_changes as (
    select
        actor_user_id as muter_id,
        target_user_id as muted_id,
        occurred_at,
        event_type = 'mute' as is_mute
    from {{ ref('stg_raw__relationships') }}
    where event_type in ('mute', 'unmute')
),

pair_states as (
    select
        muter_id,
        muted_id,
        argMax(is_mute, (occurred_at, not is_mute)) as is_muted,
        maxIf(occurred_at, is_mute) as muted_at
    from mute_changes
    group by muter_id, muted_id
)

select muter_id, muted_id, muted_at
from pair_states
where is_muted
