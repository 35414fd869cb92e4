{{ config(order_by='post_id') }}

-- one row per post (from its post_created event), with its deletion if the author removed it
with post_creations as (
    select *
    from {{ ref('stg_raw__posts') }}
    where event_type = 'post_created'
    order by occurred_at, event_id
    limit 1 by post_id
),

post_deletions as (
    select post_id, toNullable(min(occurred_at)) as deleted_at
    from {{ ref('stg_raw__posts') }}
    where event_type = 'post_deleted'
    group by post_id
)

select
    post_creations.post_id as post_id,
    post_creations.author_id as author_id,
    post_creations.occurred_at as created_at,
    post_creations.received_at as received_at,
    post_creations.ingested_at as ingested_at,
    assumeNotNull(post_creations.media_type) as media_type,
    post_creations.media_mime_types as media_mime_types,
    post_creations.media_widths as media_widths,
    post_creations.media_heights as media_heights,
    post_creations.media_durations_ms as media_durations_ms,
    post_creations.media_sizes_bytes as media_sizes_bytes,
    post_creations.caption as caption,
    post_creations.hashtags as hashtags,
    post_creations.mentioned_user_ids as mentioned_user_ids,
    post_creations.location_id as location_id,
    post_creations.location_name as location_name,
    post_creations.latitude as latitude,
    post_creations.longitude as longitude,
    toBool(post_deletions.deleted_at is not null) as is_deleted,
    post_deletions.deleted_at as deleted_at
from post_creations
left join post_deletions on post_creations.post_id = post_deletions.post_id
