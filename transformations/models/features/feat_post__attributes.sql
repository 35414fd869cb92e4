{{ config(order_by='(post_id, event_timestamp)') }}

-- one row per post, at its creation: what it is (media, size, text), known from the moment it
-- exists
select
    post_id,
    {{ ms_utc('created_at') }} as event_timestamp,
    toString(media_type) as media_type,
    toInt64(media_count) as media_count,
    toInt64(first_media_width) as first_media_width,
    toInt64(first_media_height) as first_media_height,
    {{ safe_rate('first_media_width', 'first_media_height') }} as aspect_ratio,
    toInt64(first_media_width) * toInt64(first_media_height) as first_media_pixels,
    -- bytes per pixel of the first item (log): how much detail the encoder kept, a resolution
    -- and compression proxy; null without a size or dimensions
    if(
        first_media_size_bytes > 0 and first_media_width > 0 and first_media_height > 0,
        log(toFloat64(first_media_size_bytes) / (toFloat64(first_media_width) * first_media_height)),
        null
    ) as first_media_log_bytes_per_pixel,
    has_video,
    toInt64(total_duration_ms) as total_duration_ms,
    toInt64(hashtag_count) as hashtag_count,
    toInt64(length(mentioned_user_ids)) as mention_count,
    toInt64(caption_length) as caption_length,
    toBool(location_id is not null) as has_location,
    {{ ms_utc('created_at') }} as created_at
from {{ ref('dim_posts') }}
