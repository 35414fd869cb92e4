{{ config(order_by='(followee_id, follower_id)') }}

-- one row per follower x followee who follows now. A follow starts with `follow` (public
-- account) or `follow_approved` (the private account approves; its target is the requester) and
-- ends with `unfollow`, or with a `block` in either direction (a block emits no unfollow events
-- and an unblock does not restore the follow). followed_since is the start of the current span.
with relationship_events as (
    select * from {{ ref('stg_raw__relationships') }}
),

follow_changes as (
    select actor_user_id as follower_id, target_user_id as followee_id, occurred_at, true as is_start
    from relationship_events
    where event_type = 'follow'

    union all

    select target_user_id as follower_id, actor_user_id as followee_id, occurred_at, true as is_start
    from relationship_events
    where event_type = 'follow_approved'

    union all

    select actor_user_id as follower_id, target_user_id as followee_id, occurred_at, false as is_start
    from relationship_events
    where event_type in ('unfollow', 'block')

    union all

    select target_user_id as follower_id, actor_user_id as followee_id, occurred_at, false as is_start
    from relationship_events
    where event_type = 'block'
),

pair_states as (
    -- the latest change decides; on a tie an end wins
    select
        follower_id,
        followee_id,
        argMax(is_start, (occurred_at, not is_start)) as is_following,
        maxIf(toNullable(occurred_at), not is_start) as last_ended_at
    from follow_changes
    group by follower_id, followee_id
),

current_follows as (
    select
        pair_states.follower_id as follower_id,
        pair_states.followee_id as followee_id,
        min(follow_changes.occurred_at) as followed_since
    from pair_states
    inner join follow_changes
        on pair_states.follower_id = follow_changes.follower_id
        and pair_states.followee_id = follow_changes.followee_id
    where pair_states.is_following
        and follow_changes.is_start
        and (pair_states.last_ended_at is null or follow_changes.occurred_at > pair_states.last_ended_at)
    group by pair_states.follower_id, pair_states.followee_id
)

select follower_id, followee_id, followed_since
from current_follows
