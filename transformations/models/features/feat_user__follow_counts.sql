{{ config(order_by='(user_id, event_timestamp)') }}

-- one row per user and instant a count changes: followers, accounts followed and tier, from
-- the follow transitions (int_follow_transitions) and the tier rule (macro follower_tier). A
-- row at signup says 0 and 0, so a user nobody follows has 0 followers, not a missing value.
with transitions as (
    select * from {{ ref('int_follow_transitions') }}
),

count_changes as (
    select followee_id as user_id, occurred_at, delta as follower_delta, 0 as following_delta
    from transitions
    union all
    select follower_id, occurred_at, 0, delta
    from transitions
    union all
    select user_id, occurred_at, 0, 0
    from {{ ref('stg_raw__users') }}
    where event_type = 'user_created'
),

instants as (
    select user_id, occurred_at, sum(follower_delta) as follower_delta,
        sum(following_delta) as following_delta
    from count_changes
    group by user_id, occurred_at
),

counts as (
    select
        user_id,
        occurred_at,
        toInt64(sum(follower_delta) over w) as follower_count,
        toInt64(sum(following_delta) over w) as following_count
    from instants
    window w as (partition by user_id order by occurred_at rows between unbounded preceding and current row)
)

select
    user_id,
    {{ ms_utc('occurred_at') }} as event_timestamp,
    follower_count,
    following_count,
    {{ follower_tier('follower_count') }} as tier
from counts
