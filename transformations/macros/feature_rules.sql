{#- Rules shared by the marts and the feature tables: each is written here once. -#}

{% macro follower_tier(follower_count) -%}
    {#- a user's tier by follower count (inclusive lower bounds in vars) -#}
    multiIf(
        {{ follower_count }} >= {{ var('tier_celebrity_min_followers') }}, 'celebrity',
        {{ follower_count }} >= {{ var('tier_popular_min_followers') }}, 'popular',
        'ordinary'
    )
{%- endmacro %}

{% macro affinity_weight(engagement_type) -%}
    {#- weight of one engagement in the viewer x author affinity score -#}
    multiIf(
        {%- for kind, weight in var('affinity_weights').items() %}
        {{ engagement_type }} = '{{ kind }}', {{ weight }},
        {%- endfor %}
        0
    )
{%- endmacro %}

{% macro affinity_half_life_ms() -%}
    {{ var('affinity_half_life_days') * 86400000 }}
{%- endmacro %}

{% macro affinity_decay(since, until) -%}
    {#- the factor 2 ^ -(age / half life) an affinity weight from `since` keeps at `until`
    (above 1 when `until` is earlier: the running sum in fct_user_author_affinity_history
    scales weights up to a common origin); the request-time twin is
    feature_repo.request_time.viewer_author_arrays, which reads the half life from the row -#}
    exp2(-dateDiff('millisecond', {{ since }}, {{ until }}) / {{ affinity_half_life_ms() }})
{%- endmacro %}

{% macro ms_utc(expression) -%}
    toDateTime64({{ expression }}, 3, 'UTC')
{%- endmacro %}

{% macro safe_rate(numerator, denominator) -%}
    if(({{ denominator }}) = 0, 0, ({{ numerator }}) / ({{ denominator }}))
{%- endmacro %}

{% macro engagement_types() -%}
    {{ return(['like', 'comment', 'share', 'save']) }}
{%- endmacro %}
