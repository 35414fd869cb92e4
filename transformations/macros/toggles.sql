{#- The on/off state machine of a relationship toggle (block/unblock, mute/unmute): written once,
    used by int_blocks and int_mutes. -#}

{% macro current_toggles(on_event, off_event, actor_column, target_column, since_column) -%}
    {#- one row per actor x target whose latest `on_event` / `off_event` is `on_event` (at one
        instant, the off event wins), with `since_column` = the latest `on_event` -#}
    with toggle_changes as (
        select
            actor_user_id as actor_id,
            target_user_id as target_id,
            occurred_at,
            event_type = '{{ on_event }}' as is_on
        from {{ ref('stg_raw__relationships') }}
        where event_type in ('{{ on_event }}', '{{ off_event }}')
    ),

    pair_states as (
        select
            actor_id,
            target_id,
            argMax(is_on, (occurred_at, not is_on)) as is_on_now,
            maxIf(occurred_at, is_on) as on_since
        from toggle_changes
        group by actor_id, target_id
    )

    select
        actor_id as {{ actor_column }},
        target_id as {{ target_column }},
        on_since as {{ since_column }}
    from pair_states
    where is_on_now
{%- endmacro %}
