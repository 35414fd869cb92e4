{#- The incremental re-read of the marts that arrive late, written once: used by fct_engagements
    and fct_training_impressions. -#}

{% macro rereads_since_last_run(related=[]) -%}
    {#- a filter to append to a `where` in an incremental run (nothing in a full build): the rows
        ingested since the newest row this model holds, and the rows whose key got a row of
        another relation ingested since, each of `related` a pair (key columns, relation), e.g.
        (['post_id'], ref('int_posts')) re-reads the engagements on a post that arrived after
        them. `>=` re-reads the newest ingestion instant itself: rows written in the same
        millisecond as the last run's newest are not lost, and delete+insert on the unique key
        makes the re-read idempotent. -#}
    {%- if is_incremental() %}
        and (
            ingested_at >= (select max(ingested_at) from {{ this }})
            {%- for key, relation in related %}
            or ({{ key | join(', ') }}) in (
                select {{ key | join(', ') }}
                from {{ relation }}
                where ingested_at >= (select max(ingested_at) from {{ this }})
            )
            {%- endfor %}
        )
    {%- endif %}
{%- endmacro %}
