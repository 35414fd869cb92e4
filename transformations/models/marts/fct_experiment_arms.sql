{{ config(order_by='(experiment, arm)') }}

-- one row per online experiment and arm: who was exposed and how they engaged. An impression
-- counts as engaged by the label of fct_training_impressions (the one home of that rule); a
-- session is a feed request (request_id: the pages of one ranked snapshot, read by cursor).
-- Position-weighted engagement discounts each slot by 1 / log2(position + 2), as NDCG does.
-- Confidence intervals, the sample-ratio check and the decision: experiments.analysis.
with exposures as (
    select
        event_id as impression_id,
        assumeNotNull(experiment) as experiment,
        assumeNotNull(arm) as arm,
        request_id
    from {{ ref('stg_raw__views') }}
    -- ifNull: outside experiments both are null (or empty in a unit test's typed fixture)
    where event_type = 'impression' and ifNull(experiment, '') != '' and ifNull(arm, '') != ''
),

labelled as (
    select
        exposures.experiment as experiment,
        exposures.arm as arm,
        impressions.viewer_id as viewer_id,
        if(
            exposures.request_id is null,
            toString(impressions.impression_id),
            toString(exposures.request_id)
        ) as session_id,
        impressions.position as position,
        impressions.is_engaged as is_engaged
    from exposures
    inner join {{ ref('fct_training_impressions') }} as impressions
        on exposures.impression_id = impressions.impression_id
)

select
    experiment,
    arm,
    uniqExact(viewer_id) as users,
    uniqExact(session_id) as sessions,
    count() as impressions,
    countIf(is_engaged) as engaged_impressions,
    countIf(is_engaged) / count() as engagement_rate,
    countIf(is_engaged) / uniqExact(session_id) as engagements_per_session,
    uniqExact(session_id) / uniqExact(viewer_id) as sessions_per_user,
    sum(if(is_engaged, 1.0, 0.0) / log2(position + 2)) / sum(1.0 / log2(position + 2))
        as weighted_engagement_rate
from labelled
group by experiment, arm
