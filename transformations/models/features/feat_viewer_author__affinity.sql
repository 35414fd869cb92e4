{{ config(order_by='(user_id, author_id, event_timestamp)') }}

{%- set weights = var('affinity_weights') -%}

-- one row per viewer x author and instant the viewer engages with the author's post:
-- interactions so far and the decayed score as of that instant, as computed once in
-- fct_user_author_affinity_history. affinity_half_life_hours travels with the row so the
-- on-demand view that decays the score to request time takes the half life from here, not from
-- a second copy of the dbt vars.
select
    viewer_id as user_id,
    author_id,
    {{ ms_utc('engaged_at') }} as event_timestamp,
    affinity_score,
    toInt64(interactions) as interactions,
    {%- for t in weights %}
    toInt64({{ t }}s) as {{ t }}s,
    {%- endfor %}
    {{ ms_utc('engaged_at') }} as last_interaction_at,
    toFloat64({{ var('affinity_half_life_days') }} * 24) as affinity_half_life_hours
from {{ ref('fct_user_author_affinity_history') }}
