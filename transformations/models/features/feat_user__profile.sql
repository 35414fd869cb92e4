{{ config(order_by='(user_id, event_timestamp)') }}

-- one row per user and instant of a profile event: the latest country, privacy, home city and
-- coordinates and signup topics as of it, and the signup time (users without a user_created
-- event have no rows)
with profile_events as (
    select
        user_id,
        occurred_at,
        event_id,
        last_value(country) over w as country,
        last_value(is_private) over w as is_private,
        last_value(city) over w as city,
        last_value(latitude) over w as home_latitude,
        last_value(longitude) over w as home_longitude,
        last_value(interests) over w as interests,
        minIf(toNullable(occurred_at), event_type = 'user_created') over w as signed_up_at
    from {{ ref('stg_raw__users') }}
    window w as (partition by user_id order by occurred_at, event_id rows between unbounded preceding and current row)
)

select
    user_id,
    {{ ms_utc('occurred_at') }} as event_timestamp,
    country,
    is_private,
    city,
    home_latitude,
    home_longitude,
    interests,
    {{ ms_utc('assumeNotNull(signed_up_at)') }} as signed_up_at
from profile_events
where signed_up_at is not null
order by user_id, occurred_at desc, event_id desc
limit 1 by user_id, occurred_at
