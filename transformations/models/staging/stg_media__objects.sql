-- one row per processed media object (the latest row per object_key): a post's (post_id) or a
-- story's (story_id); quality features are null for corrupt or unsupported objects
select
    object_key,
    post_id,
    story_id,
    user_id as author_id,
    mime_type,
    width,
    height,
    duration_ms,
    bytes as size_bytes,
    format,
    orientation,
    megapixels,
    sharpness,
    brightness,
    blockiness,
    nsfw_score,
    face_count,
    status,
    reason as status_reason,
    toBool(status = 'corrupt') as is_corrupt,
    rendition_keys,
    processed_at
from {{ source('media', 'objects') }} final
