{{ config(order_by='(followee_id, follower_id)') }}

-- one row per follower x followee who follows now: the pairs whose latest transition
-- (int_follow_transitions, where the follow rules live) is a start; followed_since is that
-- start, the beginning of the current, unbroken follow.
select
    follower_id,
    followee_id,
    max(occurred_at) as followed_since
from {{ ref('int_follow_transitions') }}
group by follower_id, followee_id
having argMax(is_following, occurred_at) = 1
