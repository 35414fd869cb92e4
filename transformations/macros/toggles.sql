{#- The on/off state machine of a toggle (like/unlike, block/unblock, mute/unmute): written once,
    used by int_likes, int_blocks and int_mutes, and (its history) by int_follow_transitions. -#}

{% macro standing_toggles(source, on_event, off_event, keys, carried=[]) -%}
    {#- one row per `keys` whose latest instant in `toggle_instants` leaves the toggle on: the
        keys, `occurred_at` of that instant and its `carried` columns (e.g. its event id) -#}
    with toggle_history as (
        {{ toggle_instants(source, on_event, off_event, keys, carried) }}
    ),

    pair_states as (
        select
            {{ keys | join(', ') }},
            argMax(
                tuple(is_on, occurred_at{% for column in carried %}, {{ column }}{% endfor %}),
                occurred_at
            ) as latest_change
        from toggle_history
        group by {{ keys | join(', ') }}
    )

    select
        {{ keys | join(', ') }},
        tupleElement(latest_change, 2) as occurred_at
        {%- for column in carried %},
        tupleElement(latest_change, {{ loop.index + 2 }}) as {{ column }}
        {%- endfor %}
    from pair_states
    where tupleElement(latest_change, 1)
{%- endmacro %}

{% macro current_toggles(on_event, off_event, actor_column, target_column, since_column) -%}
    {#- a relationship toggle: one row per actor x target toggled on now, `since_column` = the
        standing on event's time -#}
    select
        actor_user_id as {{ actor_column }},
        target_user_id as {{ target_column }},
        occurred_at as {{ since_column }}
    from (
        {{ standing_toggles(ref('stg_raw__relationships'), on_event, off_event,
                            ['actor_user_id', 'target_user_id']) }}
    )
{%- endmacro %}

{% macro toggle_instants(source, on_event, off_event, keys, carried=[]) -%}
    {#- the history of a toggle, and the one place its tie rule lives: one row per `keys` and
        instant it was toggled, `is_on` = the state from that instant on. At one instant the off
        event wins (like and unlike in one millisecond leave no like). `carried` columns come
        from the instant's on event with the least event_id, so a tie picks the same row on
        every run. The state "as of T" is the latest row before T: an ASOF JOIN on
        `occurred_at`; the state now is the latest row (standing_toggles). -#}
    select
        {{ keys | join(', ') }},
        occurred_at,
        is_on
        {%- for column in carried %},
        tupleElement(first_on_event, {{ loop.index + 2 }}) as {{ column }}
        {%- endfor %}
    from (
        select
            {{ keys | join(', ') }},
            occurred_at,
            min(event_type = '{{ on_event }}') as is_on
            {%- if carried %},
            min(tuple(event_type != '{{ on_event }}', event_id, {{ carried | join(', ') }}))
                as first_on_event
            {%- endif %}
        from {{ source }}
        where event_type in ('{{ on_event }}', '{{ off_event }}')
        group by {{ keys | join(', ') }}, occurred_at
    )
{%- endmacro %}
