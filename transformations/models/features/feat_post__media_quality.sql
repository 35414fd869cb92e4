{{ config(order_by='(post_id, event_timestamp)') }}

-- one row per post and instant one of its media was known processed: quality of the media
-- processed so far (as dim_posts summarises it). Known at processed_at, but no later than
-- var media_processing_seconds after the post was created: online the pipeline runs at upload,
-- so a backfill (processing last week's posts today) must not make every training impression
-- see the media as unprocessed when serving, reading today's online store, sees it processed.
with processed as (
    select
        media.post_id as post_id,
        least(
            media.processed_at,
            posts.created_at + toIntervalSecond({{ var('media_processing_seconds') }})
        ) as processed_at,
        sharpness, brightness, megapixels, blockiness,
        toUInt8(is_corrupt) as corrupt
    from {{ ref('stg_media__objects') }} as media
    inner join (select post_id, created_at from {{ ref('dim_posts') }}) as posts
        on posts.post_id = media.post_id
    where media.post_id is not null
)

select
    assumeNotNull(post_id) as post_id,
    {{ ms_utc('processed_at') }} as event_timestamp,
    toInt64(count() over w) as processed_media_count,
    min(sharpness) over w as min_media_sharpness,
    avg(brightness) over w as mean_media_brightness,
    max(megapixels) over w as max_media_megapixels,
    max(blockiness) over w as max_media_blockiness,
    toBool(max(corrupt) over w) as has_corrupt_media
from processed
window w as (partition by post_id order by processed_at range between unbounded preceding and current row)
order by post_id, event_timestamp desc
limit 1 by post_id, event_timestamp
