{{ config(order_by='(viewer_id, author_id)') }}

{%- set weights = var('affinity_weights') -%}

-- one row per viewer x author the viewer has engaged with (standing likes, comments, shares,
-- saves on the author's posts; never with oneself): affinity_score = sum over the engagements of
-- weight(type) * 0.5 ^ (age / affinity_half_life_days), the age taken at as_of_at, the time of
-- the newest engagement in fct_engagements
with engagements as (
    select viewer_id, author_id, engagement_type, engaged_at
    from {{ ref('fct_engagements') }}
    where viewer_id != author_id
),

newest_engagement as (
    select max(engaged_at) as as_of_at from {{ ref('fct_engagements') }}
)

select
    engagements.viewer_id as viewer_id,
    engagements.author_id as author_id,
    sum(
        {{ affinity_weight('engagements.engagement_type') }}
        * pow(0.5, dateDiff('millisecond', engagements.engaged_at, newest_engagement.as_of_at) / {{ affinity_half_life_ms() }})
    ) as affinity_score,
    count() as interactions,
    {%- for engagement_type in weights %}
    countIf(engagements.engagement_type = '{{ engagement_type }}') as {{ engagement_type }}s,
    {%- endfor %}
    max(engagements.engaged_at) as last_interaction_at,
    any(newest_engagement.as_of_at) as as_of_at
from engagements
cross join newest_engagement
group by engagements.viewer_id, engagements.author_id
