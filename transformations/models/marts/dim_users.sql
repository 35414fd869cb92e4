{{ config(order_by='user_id') }}

-- one row per user (who has a user_created event), with the latest value of every profile
-- attribute, follower counts from the current follow graph, and a tier by follower count
with user_events as (
    select * from {{ ref('stg_raw__users') }}
),

profiles as (
    -- user_created sets every attribute; profile_updated only the ones it carries
    select
        user_id,
        minIf(occurred_at, event_type = 'user_created') as created_at,
        argMaxIf(username, (occurred_at, event_id), username is not null) as latest_username,
        argMaxIf(is_private, (occurred_at, event_id), is_private is not null) as latest_is_private,
        argMaxIf(country, (occurred_at, event_id), country is not null) as latest_country,
        argMaxIf(bio, (occurred_at, event_id), bio is not null) as latest_bio,
        countIf(event_type = 'profile_updated') as profile_updates
    from user_events
    group by user_id
    having countIf(event_type = 'user_created') > 0
),

follower_counts as (
    select followee_id as user_id, count() as follower_count
    from {{ ref('int_follow_graph') }}
    group by followee_id
),

following_counts as (
    select follower_id as user_id, count() as following_count
    from {{ ref('int_follow_graph') }}
    group by follower_id
)

select
    profiles.user_id as user_id,
    assumeNotNull(profiles.latest_username) as username,
    assumeNotNull(profiles.latest_country) as country,
    assumeNotNull(profiles.latest_is_private) as is_private,
    profiles.latest_bio as bio,
    profiles.created_at as created_at,
    profiles.profile_updates as profile_updates,
    follower_counts.follower_count as follower_count,
    following_counts.following_count as following_count,
    {{ follower_tier('follower_counts.follower_count') }} as tier
from profiles
left join follower_counts on profiles.user_id = follower_counts.user_id
left join following_counts on profiles.user_id = following_counts.user_id
