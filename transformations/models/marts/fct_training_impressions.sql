{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='impression_id',
        order_by='(viewer_id, impressed_at, impression_id)',
        partition_by='toYYYYMM(impressed_at)',
        on_schema_change='fail'
    )
}}

{%- set label_window_hours = var('engagement_label_window_hours') -%}

-- one row per impression (a post on a viewer's screen), labelled is_engaged when the viewer
-- liked, commented on, shared or saved that post within engagement_label_window_hours after the
-- impression (a like counts even if it was unliked later: the viewer did engage). Ready for
-- point-in-time joins: impressed_at is the event time, received_at when the platform had it.
-- Incremental: a run relabels the impressions ingested since the newest row it holds, those
-- whose viewer x post got an engagement ingested since, and those on posts ingested since.
with impressions as (
    select *
    from {{ ref('stg_raw__views') }}
    where event_type = 'impression'
    {{ rereads_since_last_run([
        (['viewer_id', 'post_id'], ref('stg_raw__engagements')),
        (['post_id'], ref('int_posts')),
    ]) }}
),

engagement_actions as (
    select viewer_id, post_id, occurred_at as engaged_at
    from {{ ref('stg_raw__engagements') }}
    where event_type in ('like', 'comment', 'share', 'save')
),

posts as (
    select post_id, author_id from {{ ref('int_posts') }}
),

impression_labels as (
    select
        impressions.event_id as impression_id,
        toBool(
            countIf(
                engagement_actions.engaged_at >= impressions.occurred_at
                and engagement_actions.engaged_at
                    <= impressions.occurred_at + interval {{ label_window_hours }} hour
            ) > 0
        ) as is_engaged
    from impressions
    left join engagement_actions
        on impressions.viewer_id = engagement_actions.viewer_id
        and impressions.post_id = engagement_actions.post_id
    group by impressions.event_id
)

select
    impressions.event_id as impression_id,
    impressions.request_id as request_id,
    impressions.viewer_id as viewer_id,
    assumeNotNull(impressions.post_id) as post_id,
    posts.author_id as author_id,
    impressions.occurred_at as impressed_at,
    impressions.received_at as received_at,
    impressions.ingested_at as ingested_at,
    toLowCardinality(assumeNotNull(impressions.surface)) as surface,
    assumeNotNull(impressions.position) as position,
    assumeNotNull(impressions.dwell_ms) as dwell_ms,
    -- serving's exploration slice drew this slot at random (an impression not flagged was ranked)
    toBool(coalesce(impressions.explored, false)) as explored,
    impressions.occurred_at + interval {{ label_window_hours }} hour as label_window_ends_at,
    impression_labels.is_engaged as is_engaged
from impressions
inner join posts on impressions.post_id = posts.post_id
inner join impression_labels on impressions.event_id = impression_labels.impression_id
