{{ config(order_by='activity_date') }}

-- one row per UTC day with any activity: distinct active users (anyone who acted that day, see
-- int_user_activity), of whom new users (signed up that day), and their events
with daily_activity as (
    select
        activity_date,
        count() as active_users,
        sum(events) as events
    from {{ ref('int_user_activity') }}
    group by activity_date
),

daily_signups as (
    select toDate(created_at) as activity_date, count() as new_users
    from {{ ref('dim_users') }}
    group by activity_date
)

select
    daily_activity.activity_date as activity_date,
    daily_activity.active_users as active_users,
    daily_signups.new_users as new_users,
    daily_activity.active_users - daily_signups.new_users as returning_users,
    daily_activity.events as events
from daily_activity
left join daily_signups on daily_activity.activity_date = daily_signups.activity_date
