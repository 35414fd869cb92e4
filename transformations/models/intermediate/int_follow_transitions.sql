{{ config(order_by='(follower_id, followee_id, occurred_at)') }}

-- The follow state machine, written once: one row per follower x followee and instant the pair
-- starts (delta +1) or stops (delta -1) following. A follow starts with `follow` (public
-- account) or `follow_approved` (the private account approves; its target is the requester) and
-- ends with `unfollow`, or with a `block` in either direction (a block emits no unfollow events
-- and an unblock does not restore the follow). At one instant an end wins. A follow the app
-- refuses starts nothing, as in visibility.VisibilityGraph.apply_relationship: a `follow` or
-- `follow_approved` while a block stands either way (as of the events before that instant: a
-- block at the same instant ends the follow anyway, and an unblock at the same instant comes
-- too late), or a plain `follow` of an account private at that instant (int_account_privacy).
-- int_follow_graph (who follows whom now) and the follow feature tables (the history) both read
-- this model. The streaming twin, visibility.VisibilityGraph.apply_relationship, reaches the same
-- state from the events of one instant in whatever order they arrive.
with relationship_events as (
    select * from {{ ref('stg_raw__relationships') }}
),

follow_requests as (
    select actor_user_id as follower_id, target_user_id as followee_id, occurred_at, event_type
    from relationship_events
    where event_type = 'follow'

    union all

    select target_user_id as follower_id, actor_user_id as followee_id, occurred_at, event_type
    from relationship_events
    where event_type = 'follow_approved'
),

-- one row per blocker x blocked and instant the block toggled (is_on: a block stands from then)
block_instants as (
    {{ toggle_instants(ref('stg_raw__relationships'), 'block', 'unblock',
                       ['actor_user_id', 'target_user_id']) }}
),

-- privacy as of the follow: the period in effect then (ASOF: the latest that began at or
-- before); empty periods (two settings at one instant) are skipped so the later one decides,
-- as in int_hashtag_trends
privacy_periods as (
    select user_id, is_private, valid_from
    from {{ ref('int_account_privacy') }}
    where valid_until is null or valid_until > valid_from
),

-- ASOF LEFT JOIN: no earlier block toggle / privacy period leaves the defaults (not blocked,
-- public); the strict `>` reads the block state from the events before this instant
follow_starts as (
    select requests.follower_id as follower_id, requests.followee_id as followee_id,
        requests.occurred_at as occurred_at
    from follow_requests as requests
    asof left join block_instants as blocks_out
        on blocks_out.actor_user_id = requests.follower_id
        and blocks_out.target_user_id = requests.followee_id
        and requests.occurred_at > blocks_out.occurred_at
    asof left join block_instants as blocks_in
        on blocks_in.actor_user_id = requests.followee_id
        and blocks_in.target_user_id = requests.follower_id
        and requests.occurred_at > blocks_in.occurred_at
    asof left join privacy_periods as privacy
        on privacy.user_id = requests.followee_id
        and requests.occurred_at >= privacy.valid_from
    where not ifNull(blocks_out.is_on, false)
        and not ifNull(blocks_in.is_on, false)
        and not (requests.event_type = 'follow' and ifNull(privacy.is_private, false))
),

follow_changes as (
    select follower_id, followee_id, occurred_at, 1 as is_start
    from follow_starts

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
