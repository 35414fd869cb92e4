{{ config(order_by='(viewer_id, author_id, engaged_at)') }}

{%- set weights = var('affinity_weights') -%}

-- the one definition of the viewer x author affinity: one row per viewer x author and instant
-- (millisecond) the viewer engages with the author's posts (standing likes, comments, shares,
-- saves; never oneself), with the interactions so far and
--   affinity_score(t) = sum over engagements i at or before t of weight_i * 2 ^ -((t - t_i) / h)
-- (h = var affinity_half_life_days). fct_user_author_affinity takes each pair's latest row and
-- decays it to its as_of_at; feat_viewer_author__affinity stamps every row for Feast.
-- Computed as a running sum: score(t) = 2^-((t - t0)/h) * sum_i w_i 2^((t_i - t0)/h), with t0
-- the pair's first interaction to keep the exponents small.
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
        sum({{ affinity_weight('engagement_type') }} * {{ affinity_decay('e.engaged_at', 'f.first_at') }}) as scaled_weight,
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
    viewer_id,
    author_id,
    engaged_at,
    sum(scaled_weight) over w * {{ affinity_decay('first_at', 'engaged_at') }} as affinity_score,
    sum(interactions) over w as interactions,
    {%- for t in weights %}
    sum({{ t }}s) over w as {{ t }}s
    {%- if not loop.last %},{% endif %}
    {%- endfor %}
from instants
window w as (partition by viewer_id, author_id order by engaged_at rows between unbounded preceding and current row)
