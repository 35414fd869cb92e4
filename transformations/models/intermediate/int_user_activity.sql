{{ config(order_by='(activity_date, user_id)', partition_by='toYYYYMM(activity_date)') }}

-- one row per user and UTC day on which the user acted: every event the user is the actor of
-- (sign-up, profile updates, posts, stories, engagements, impressions and story views seen,
-- relationship changes they made, story replies sent, lives started, settings changed)
with actor_events as (
    select user_id, occurred_at from {{ ref('stg_raw__users') }}
    union all
    select author_id as user_id, occurred_at from {{ ref('stg_raw__posts') }}
    union all
    select author_id as user_id, occurred_at from {{ ref('stg_raw__stories') }}
    union all
    select viewer_id as user_id, occurred_at from {{ ref('stg_raw__engagements') }}
    union all
    select viewer_id as user_id, occurred_at from {{ ref('stg_raw__views') }}
    union all
    select actor_user_id as user_id, occurred_at from {{ ref('stg_raw__relationships') }}
    union all
    select sender_id as user_id, occurred_at from {{ ref('stg_raw__messages') }}
    union all
    select broadcaster_id as user_id, occurred_at from {{ ref('stg_raw__live') }}
    union all
    select user_id, occurred_at from {{ ref('stg_raw__settings') }}
)

select
    user_id,
    toDate(occurred_at) as activity_date,
    count() as events,
    min(occurred_at) as first_event_at,
    max(occurred_at) as last_event_at
from actor_events
group by user_id, activity_date
