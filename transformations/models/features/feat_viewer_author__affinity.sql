{{ config(order_by='(user_id, author_id, event_timestamp)') }}

{%- set weights = var('affinity_weights') -%}

-- one row per viewer x author and instant the viewer engages with the author's post:
-- interactions so far and fct_user_author_affinity's decayed score as of that instant (same
-- weight rule, same half life). affinity_half_life_hours travels with the row so the on-demand
-- view that decays the score to request time takes the half life from here, not from a second
-- copy of the dbt vars.
-- score(t) = sum_i w_i 2^-((t - t_i)/h) = 2^-((t - t0)/h) * sum_i w_i 2^((t_i - t0)/h): a
-- running sum per pair, with t0 the pair's first interaction to keep the exponents small
with engagements as (
    select viewer_id, author_id, engagement_type, engaged_at
    from {{ ref('fct_engagements') }}
    where viewer_id != author_id
),

firsts as (
    select viewer_id, author_id, min(engaged_at) as first_at
    from engagements
    group by viewer_id, author_id
),

instants as (
    select
        e.viewer_id as viewer_id,
        e.author_id as author_id,
        e.engaged_at as engaged_at,
        sum(
            {{ affinity_weight('engagement_type') }}
            * exp2(dateDiff('millisecond', f.first_at, e.engaged_at) / {{ affinity_half_life_ms() }})
        ) as scaled_weight,
        count() as interactions,
        {%- for t in weights %}
        countIf(engagement_type = '{{ t }}') as {{ t }}s,
        {%- endfor %}
        any(f.first_at) as first_at
    from engagements as e
    inner join firsts as f on e.viewer_id = f.viewer_id and e.author_id = f.author_id
    group by viewer_id, author_id, engaged_at
)

select
    viewer_id as user_id,
    author_id,
    {{ ms_utc('engaged_at') }} as event_timestamp,
    sum(scaled_weight) over w
        * exp2(-dateDiff('millisecond', first_at, engaged_at) / {{ affinity_half_life_ms() }}) as affinity_score,
    toInt64(sum(interactions) over w) as interactions,
    {%- for t in weights %}
    toInt64(sum({{ t }}s) over w) as {{ t }}s,
    {%- endfor %}
    {{ ms_utc('engaged_at') }} as last_interaction_at,
    toFloat64({{ var('affinity_half_life_days') }} * 24) as affinity_half_life_hours
from instants
window w as (partition by viewer_id, author_id order by engaged_at rows between unbounded preceding and current row)
