-- one row per post event (post_created, post_deleted), deduplicated by event_id;
-- the media list is flattened into parallel arrays, one element per item in upload order
select
    event_id,
    event_type,
    post_id,
    user_id as author_id,
    media_type,
    arrayMap(item -> tupleElement(item, 'object_key'), media) as media_object_keys,
    arrayMap(item -> toString(tupleElement(item, 'mime_type')), media) as media_mime_types,
    arrayMap(item -> tupleElement(item, 'width'), media) as media_widths,
    arrayMap(item -> tupleElement(item, 'height'), media) as media_heights,
    arrayMap(item -> tupleElement(item, 'duration_ms'), media) as media_durations_ms,
    arrayMap(item -> tupleElement(item, 'size_bytes'), media) as media_sizes_bytes,
    caption,
    hashtags,
    mentions as mentioned_user_ids,
    location_id,
    location_name,
    latitude,
    longitude,
    occurred_at,
    _received_at as received_at,
    _ingested_at as ingested_at
from {{ source('raw', 'posts') }} final
