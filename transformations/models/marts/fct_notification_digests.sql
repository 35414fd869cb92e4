{{ config(order_by='(recipient_id, window_start_at, kind, digest_id)', partition_by='toYYYYMM(window_start_at)') }}

{%- set window_seconds = var('notification_digest_window_hours') * 3600 -%}

-- one row per recipient, kind (like, comment, follow, mention), post (null for follows) and
-- notification window (notification_digest_window_hours long, aligned to the Unix epoch): one digest
-- such as "X and 3 others liked your post", X being the most recent actor. Likes are standing
-- likes; likes, comments and mentions of deleted posts are dropped; follows are every follow
-- start (a follow, or the approval of a request); nobody is notified of their own actions.
with posts as (
    select post_id, author_id, created_at, mentioned_user_ids
    from {{ ref('int_posts') }}
    where not is_deleted
),

post_notifications as (
    select
        engagements.engagement_type as kind,
        posts.author_id as recipient_id,
        toNullable(engagements.post_id) as post_id,
        engagements.viewer_id as actor_id,
        engagements.engaged_at as notified_at
    from {{ ref('fct_engagements') }} as engagements
    inner join posts on engagements.post_id = posts.post_id
    where engagements.engagement_type in ('like', 'comment')
),

follow_notifications as (
    select
        'follow' as kind,
        if(event_type = 'follow', target_user_id, actor_user_id) as recipient_id,
        cast(null as Nullable(Int64)) as post_id,
        if(event_type = 'follow', actor_user_id, target_user_id) as actor_id,
        occurred_at as notified_at
    from {{ ref('stg_raw__relationships') }}
    where event_type in ('follow', 'follow_approved')
),

mention_notifications as (
    select
        'mention' as kind,
        mentioned_user_id as recipient_id,
        toNullable(post_id) as post_id,
        author_id as actor_id,
        created_at as notified_at
    from posts
    array join mentioned_user_ids as mentioned_user_id
),

notifications as (
    select kind, recipient_id, post_id, actor_id, notified_at from post_notifications
    union all
    select kind, recipient_id, post_id, actor_id, notified_at from follow_notifications
    union all
    select kind, recipient_id, post_id, actor_id, notified_at from mention_notifications
),

digests as (
    select
        recipient_id,
        kind,
        post_id,
        toDateTime64(intDiv(toUnixTimestamp(notified_at), {{ window_seconds }}) * {{ window_seconds }}, 3, 'UTC') as window_start_at,
        argMax(actor_id, (notified_at, actor_id)) as latest_actor_id,
        uniqExact(actor_id) as actors,
        -- every actor, newest first, so serving can count and name only those the recipient
        -- may see (blocks and mutes change after the mart is built)
        arrayDistinct(arrayMap(t -> t.2, arrayReverseSort(groupArray((notified_at, actor_id))))) as actor_ids,
        count() as events,
        min(notified_at) as first_notified_at,
        max(notified_at) as last_notified_at
    from notifications
    where actor_id != recipient_id
    group by recipient_id, kind, post_id, window_start_at
)

select
    concat(
        toString(digests.recipient_id), ':', digests.kind, ':',
        ifNull(toString(digests.post_id), '-'), ':', toString(toUnixTimestamp(digests.window_start_at))
    ) as digest_id,
    digests.recipient_id as recipient_id,
    toLowCardinality(digests.kind) as kind,
    digests.post_id as post_id,
    digests.window_start_at as window_start_at,
    digests.window_start_at + interval {{ window_seconds }} second as window_end_at,
    digests.latest_actor_id as latest_actor_id,
    digests.actors as actors,
    digests.actor_ids as actor_ids,
    digests.events as events,
    digests.first_notified_at as first_notified_at,
    digests.last_notified_at as last_notified_at,
    concat(
        actor_users.username,
        multiIf(digests.actors = 1, '', digests.actors = 2, ' and 1 other', concat(' and ', toString(digests.actors - 1), ' others')),
        multiIf(
            digests.kind = 'like', ' liked your post',
            digests.kind = 'comment', ' commented on your post',
            digests.kind = 'follow', ' started following you',
            ' mentioned you in a post'
        )
    ) as message
from digests
inner join {{ ref('dim_users') }} as actor_users on digests.latest_actor_id = actor_users.user_id
