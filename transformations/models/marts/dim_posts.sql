{{ config(order_by='post_id') }}

-- one row per post, with its media summarised, the quality of its processed media (null until
-- the media pipeline has processed any of it), its content checks and whether its author
-- deleted it
with post_media_quality as (
    select
        post_id,
        toNullable(count()) as processed_media_count,
        min(sharpness) as min_media_sharpness,
        avg(brightness) as mean_media_brightness,
        max(megapixels) as max_media_megapixels,
        max(blockiness) as max_media_blockiness,
        toNullable(toBool(countIf(is_corrupt) > 0)) as has_corrupt_media,
        max(nsfw_score) as max_media_nsfw_score,
        max(face_count) as max_media_face_count
    from {{ ref('stg_media__objects') }}
    where post_id is not null
    group by post_id
)

select
    int_posts.post_id as post_id,
    author_id,
    created_at,
    media_type,
    length(media_widths) as media_count,
    media_widths[1] as first_media_width,
    media_heights[1] as first_media_height,
    media_sizes_bytes[1] as first_media_size_bytes,
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
    deleted_at,
    post_media_quality.processed_media_count as processed_media_count,
    post_media_quality.min_media_sharpness as min_media_sharpness,
    post_media_quality.mean_media_brightness as mean_media_brightness,
    post_media_quality.max_media_megapixels as max_media_megapixels,
    post_media_quality.max_media_blockiness as max_media_blockiness,
    post_media_quality.has_corrupt_media as has_corrupt_media,
    post_media_quality.max_media_nsfw_score as max_media_nsfw_score,
    post_media_quality.max_media_face_count as max_media_face_count,
    -- kept out of Explore and search: media at or above the NSFW threshold (moderation queue)
    {{ is_moderation_hidden('post_media_quality.max_media_nsfw_score') }} as is_moderation_hidden
from {{ ref('int_posts') }} as int_posts
left join post_media_quality on int_posts.post_id = post_media_quality.post_id
