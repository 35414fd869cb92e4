{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='engagement_id',
        order_by='(post_id, engaged_at, engagement_id)',
        partition_by='toYYYYMM(engaged_at)',
        on_schema_change='fail',
        post_hook=[
            "delete from {{ this }} where engagement_type = 'like' and engagement_id not in (select like_event_id from {{ ref('int_likes') }})"
        ]
    )
}}

-- one row per engagement that stands: every comment, share and save, and the standing like of
-- each viewer x post (a like that was later unliked is gone; like, unlike, like again keeps only
-- the last like). Incremental: a run re-reads the events ingested since the newest row it holds
-- (and those on posts ingested since), replacing rows by engagement_id; the post-hook deletes
-- likes that an unlike or a newer like has superseded since they were written.
with engagement_events as (
    select *
    from {{ ref('stg_raw__engagements') }}
    where event_type in ('like', 'comment', 'share', 'save')
    {{ rereads_since_last_run([(['post_id'], ref('int_posts'))]) }}
),

standing_likes as (
    select like_event_id from {{ ref('int_likes') }}
),

posts as (
    select post_id, author_id from {{ ref('int_posts') }}
)

select
    engagement_events.event_id as engagement_id,
    toLowCardinality(engagement_events.event_type) as engagement_type,
    engagement_events.viewer_id as viewer_id,
    engagement_events.post_id as post_id,
    posts.author_id as author_id,
    engagement_events.occurred_at as engaged_at,
    engagement_events.received_at as received_at,
    engagement_events.ingested_at as ingested_at,
    engagement_events.comment_id as comment_id,
    engagement_events.parent_comment_id as parent_comment_id,
    engagement_events.comment_text as comment_text,
    engagement_events.share_channel as share_channel
from engagement_events
inner join posts on engagement_events.post_id = posts.post_id
where engagement_events.event_type != 'like'
    or engagement_events.event_id in (select like_event_id from standing_likes)
