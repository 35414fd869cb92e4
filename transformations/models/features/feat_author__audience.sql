{{ config(order_by='(author_id, event_timestamp)') }}

-- one row per author and instant a count changes: feat_user__follow_counts keyed as an author
select user_id as author_id, event_timestamp, follower_count, following_count, tier
from {{ ref('feat_user__follow_counts') }}
