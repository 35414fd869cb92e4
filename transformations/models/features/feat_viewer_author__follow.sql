{{ config(order_by='(user_id, author_id, event_timestamp)') }}

-- one row per viewer x author and instant the viewer starts or stops following the author
select
    follower_id as user_id,
    followee_id as author_id,
    {{ ms_utc('occurred_at') }} as event_timestamp,
    toBool(is_following) as is_following
from {{ ref('int_follow_transitions') }}
