{{ config(order_by='(viewer_id, author_id)') }}

{%- set weights = var('affinity_weights') -%}

-- one row per viewer x author the viewer has engaged with: the pair's latest row in
-- fct_user_author_affinity_history (where the affinity rule is written), its score decayed on to
-- as_of_at, the time of the newest engagement in fct_engagements
with latest as (
    select *
    from {{ ref('fct_user_author_affinity_history') }}
    order by viewer_id, author_id, engaged_at desc
    limit 1 by viewer_id, author_id
),

newest_engagement as (
    select max(engaged_at) as as_of_at from {{ ref('fct_engagements') }}
)

select
    latest.viewer_id as viewer_id,
    latest.author_id as author_id,
    latest.affinity_score * {{ affinity_decay('latest.engaged_at', 'newest_engagement.as_of_at') }} as affinity_score,
    latest.interactions as interactions,
    {%- for engagement_type in weights %}
    latest.{{ engagement_type }}s as {{ engagement_type }}s,
    {%- endfor %}
    latest.engaged_at as last_interaction_at,
    newest_engagement.as_of_at as as_of_at
from latest
cross join newest_engagement
