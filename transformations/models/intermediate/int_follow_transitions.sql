{{ config(order_by='(follower_id, followee_id, occurred_at)') }}

-- The follow state machine, written once: one row per follower x followee and instant the pair
-- starts (delta +1) or stops (delta -1) following. A follow starts with `follow` (public
-- account) or `follow_approved` (the private account approves; its target is the requester) and
-- ends with `unfollow`, or with a `block` in either direction (a block emits no unfollow events
-- and an unblock does not restore the follow). At one instant an end wins. int_follow_graph
-- (who follows whom now) and the follow feature tables (the history) both read this model.
with relationship_events as (
    select * from {{ ref('stg_raw__relationships') }}
),

follow_changes as (
    select actor_user_id as follower_id, target_user_id as followee_id, occurred_at, 1 as is_start
    from relationship_events
    where event_type = 'follow'

    union all

    select target_user_id as follower_id, actor_user_id as followee_id, occurred_at, 1 as is_start
    from relationship_events
    where event_type = 'follow_approved'

    union all

    select actor_user_id as follower_id, target_user_id as followee_id, occurred_at, 0 as is_start
    from relationship_events
    where event_type in ('unfollow', 'block')

    union all

    select target_user_id as follower_id, actor_user_id as followee_id, occurred_at, 0 as is_start
    from relationship_events
    where event_type = 'block'
),

pair_instants as (
    select follower_id, followee_id, occurred_at, toInt8(min(is_start)) as is_following
    from follow_changes
    group by follower_id, followee_id, occurred_at
),

pair_states as (
    select
        follower_id,
        followee_id,
        occurred_at,
        is_following,
        is_following - lagInFrame(is_following, 1, toInt8(0)) over (
            partition by follower_id, followee_id order by occurred_at
            rows between unbounded preceding and current row
        ) as delta
    from pair_instants
)

select follower_id, followee_id, occurred_at, is_following, toInt8(delta) as delta
from pair_states
where delta != 0
