{{ config(order_by='(requested_user_id, requester_id, requested_at)') }}

-- one row per follow request (to a private account), with what became of it: approved (by a
-- follow_approved from the private account after the request and before the next request),
-- cancelled (an unfollow by the requester or a block in either direction came first), or pending
with relationship_events as (
    select * from {{ ref('stg_raw__relationships') }}
),

follow_requests as (
    select
        event_id as request_id,
        actor_user_id as requester_id,
        target_user_id as requested_user_id,
        occurred_at as requested_at
    from relationship_events
    where event_type = 'follow_request'
),

approvals as (
    select
        target_user_id as requester_id,
        actor_user_id as requested_user_id,
        occurred_at as approved_at
    from relationship_events
    where event_type = 'follow_approved'
),

approved_requests as (
    -- each approval answers the latest request of the pair made before it
    select
        follow_requests.request_id as request_id,
        toNullable(min(approvals.approved_at)) as matched_approved_at
    from approvals
    asof inner join follow_requests
        on approvals.requester_id = follow_requests.requester_id
        and approvals.requested_user_id = follow_requests.requested_user_id
        and approvals.approved_at >= follow_requests.requested_at
    group by follow_requests.request_id
),

cancellations as (
    select actor_user_id as requester_id, target_user_id as requested_user_id, occurred_at as cancelled_at
    from relationship_events
    where event_type in ('unfollow', 'block')

    union all

    select target_user_id as requester_id, actor_user_id as requested_user_id, occurred_at as cancelled_at
    from relationship_events
    where event_type = 'block'
),

first_cancellations as (
    select
        follow_requests.request_id as request_id,
        toNullable(min(cancellations.cancelled_at)) as first_cancelled_at
    from follow_requests
    inner join cancellations
        on follow_requests.requester_id = cancellations.requester_id
        and follow_requests.requested_user_id = cancellations.requested_user_id
    where cancellations.cancelled_at >= follow_requests.requested_at
    group by follow_requests.request_id
),

resolved_requests as (
    select
        follow_requests.request_id as request_id,
        follow_requests.requester_id as requester_id,
        follow_requests.requested_user_id as requested_user_id,
        follow_requests.requested_at as requested_at,
        approved_requests.matched_approved_at as matched_approved_at,
        first_cancellations.first_cancelled_at as first_cancelled_at,
        multiIf(
            matched_approved_at is not null
                and (first_cancelled_at is null or matched_approved_at < first_cancelled_at),
            'approved',
            first_cancelled_at is not null, 'cancelled',
            'pending'
        ) as status
    from follow_requests
    left join approved_requests on follow_requests.request_id = approved_requests.request_id
    left join first_cancellations on follow_requests.request_id = first_cancellations.request_id
)

select
    request_id,
    requester_id,
    requested_user_id,
    requested_at,
    status,
    if(status = 'approved', matched_approved_at, null) as approved_at,
    if(status = 'cancelled', first_cancelled_at, null) as cancelled_at
from resolved_requests
