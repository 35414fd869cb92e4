{{ config(order_by='(user_id, author_id, event_timestamp)') }}

-- one row per viewer x author and instant the author starts or stops following the viewer: the
-- reverse of feat_viewer_author__follow, keyed the other way round so a feed request (viewer,
-- author) reads it directly. A pair that never interacted gets its prior from this and the
-- follow state (mutual follows engage more than one-way ones).
select
    followee_id as user_id,
    follower_id as author_id,
    {{ ms_utc('occurred_at') }} as event_timestamp,
    toBool(is_following) as is_followed_back
from {{ ref('int_follow_transitions') }}
