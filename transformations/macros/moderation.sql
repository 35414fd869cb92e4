{#- Whether moderation keeps a post out of public surfaces (Explore, search, trending): its media
    at or above the NSFW threshold. `max_nsfw_score` is the post's highest media score (null
    while no media was checked: not hidden). The one home of the rule; dim_posts and
    int_hashtag_trends both call it. -#}
{% macro is_moderation_hidden(max_nsfw_score) -%}
    toBool(ifNull({{ max_nsfw_score }}, 0) >= {{ var('nsfw_threshold') }})
{%- endmacro %}
