-- one row per story_created event, deduplicated by event_id
select
    event_id,
    event_type,
    story_id,
    user_id as author_id,
    tupleElement(media, 'object_key') as media_object_key,
    toString(tupleElement(media, 'mime_type')) as media_mime_type,
    tupleElement(media, 'width') as media_width,
    tupleElement(media, 'height') as media_height,
    tupleElement(media, 'duration_ms') as media_duration_ms,
    tupleElement(media, 'size_bytes') as media_size_bytes,
    occurred_at,
    expires_at,
    _received_at as received_at,
    _ingested_at as ingested_at
from {{ source('raw', 'stories') }} final
