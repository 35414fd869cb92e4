{{ config(order_by='(user_id, valid_from)') }}

-- one row per user and period in which one privacy setting held: from the event that set it
-- (user_created, or a profile_updated carrying is_private) to the next such event (null while it
-- still holds). The one definition of "was this account private at instant T": the period with
-- valid_from <= T < valid_until. At one instant the later event (by event_id) wins, as in
-- dim_users.
with privacy_events as (
    select user_id, event_id, occurred_at, is_private
    from {{ ref('stg_raw__users') }}
    where is_private is not null
)

select
    user_id,
    assumeNotNull(is_private) as is_private,
    occurred_at as valid_from,
    any(toNullable(occurred_at)) over (
        partition by user_id order by occurred_at, event_id
        rows between 1 following and 1 following
    ) as valid_until
from privacy_events
