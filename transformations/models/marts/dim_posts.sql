{{ config(order_by='post_id') }}

-- one row per post, with its media summarised and whether its author deleted it
select
    post_id,
    author_id,
    created_at,
    media_type,
    length(media_widths) as media_count,
    media_widths[1] as first_media_width,
    media_heights[1] as first_media_height,
    toBool(arrayExists(mime_type -> startsWith(mime_type, 'video/'), media_mime_types)) as has_video,
    arraySum(arrayMap(duration_ms -> ifNull(duration_ms, 0), media_durations_ms)) as total_duration_ms,
    hashtags,
    length(hashtags) as hashtag_count,
    mentioned_user_ids,
    location_id,
    location_name,
    latitude,
    longitude,
    caption,
    lengthUTF8(ifNull(caption, '')) as caption_length,
    is_deleted,
    deleted_at
from {{ ref('int_posts') }}
