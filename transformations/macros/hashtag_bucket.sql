{% macro hashtag_bucket(tag) -%}
    toUInt8(cityHash64(lower({{ tag }})) % {{ var('hashtag_buckets') }})
{%- endmacro %}
