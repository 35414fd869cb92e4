{{ config(order_by='(cohort_week, weeks_since_signup)') }}

-- one row per signup cohort (users whose account was created in the week starting Monday
-- cohort_week, UTC) and week since signup, from week 0 up to the newest week with any activity:
-- how many of the cohort were active in that week (week 0 includes the signup itself)
with cohorts as (
    select user_id, toMonday(created_at) as cohort_week
    from {{ ref('dim_users') }}
),

activity_weeks as (
    select distinct user_id, toMonday(activity_date) as activity_week
    from {{ ref('int_user_activity') }}
),

newest_week as (
    select max(activity_week) as newest_activity_week from activity_weeks
),

cohort_sizes as (
    select cohort_week, count() as cohort_size
    from cohorts
    group by cohort_week
),

cohort_weeks as (
    select
        cohort_sizes.cohort_week as cohort_week,
        cohort_sizes.cohort_size as cohort_size,
        arrayJoin(
            range(toUInt64(intDiv(dateDiff('day', cohort_sizes.cohort_week, newest_week.newest_activity_week), 7) + 1))
        ) as weeks_since_signup
    from cohort_sizes
    cross join newest_week
),

retained_users as (
    select
        cohorts.cohort_week as cohort_week,
        toUInt64(intDiv(dateDiff('day', cohorts.cohort_week, activity_weeks.activity_week), 7)) as weeks_since_signup,
        count() as retained_users
    from cohorts
    inner join activity_weeks on cohorts.user_id = activity_weeks.user_id
    where activity_weeks.activity_week >= cohorts.cohort_week
    group by cohort_week, weeks_since_signup
)

select
    cohort_weeks.cohort_week as cohort_week,
    cohort_weeks.weeks_since_signup as weeks_since_signup,
    cohort_weeks.cohort_size as cohort_size,
    retained_users.retained_users as retained_users,
    retained_users.retained_users / cohort_weeks.cohort_size as retention_rate
from cohort_weeks
left join retained_users
    on cohort_weeks.cohort_week = retained_users.cohort_week
    and cohort_weeks.weeks_since_signup = retained_users.weeks_since_signup
