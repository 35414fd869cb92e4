{% macro trailing_windows(key, buckets, bucket_seconds, metrics, windows, cumulative) -%}
{#-
    CTEs `timeline` and `windowed`: trailing sums of `metrics` over the relation `buckets(key,
    bucket_number, metrics...)`. One row per key and change point: the end of every bucket with
    activity, and the moment that bucket leaves each window, so a count falls back to 0 on time
    instead of repeating its last value. `<metric>_<window>` sums the last `n` buckets before the
    row's time; with `cumulative`, `<metric>_total` sums every bucket before it. Linear: window
    frames over one timeline per key, no self-join. `windows` is a list of [name, size] pairs.
-#}
{%- set offsets = [0] -%}
{%- for name, size in windows -%}{%- if size not in offsets -%}{%- do offsets.append(size) -%}{%- endif -%}{%- endfor -%}
{%- set offsets = offsets | sort -%}
    timeline as (
        select {{ key }}, bucket_number,
            {%- for m in metrics %} sum({{ m }}) as {{ m }},{% endfor %}
            toUInt8(max(offset = 0)) as has_activity
        from (
            select {{ key }}, bucket_number + offset as bucket_number, offset
                {%- for m in metrics %}, if(offset = 0, {{ m }}, 0) as {{ m }}{% endfor %}
            from {{ buckets }}
            array join [{{ offsets | join(', ') }}] as offset
        )
        group by {{ key }}, bucket_number
    ),
    windowed as (
        select
            {{ key }},
            {{ ms_utc('(bucket_number + 1) * ' ~ bucket_seconds) }} as event_timestamp
            {%- for name, size in windows %}{% for m in metrics %},
            toInt64(sum({{ m }}) over w_{{ name }}) as {{ m }}_{{ name }}
            {%- endfor %}{% endfor %}
            {%- for name, size in windows %},
            toInt64(sum(has_activity) over w_{{ name }}) as active_buckets_{{ name }}
            {%- endfor %}
            {%- if cumulative %}{% for m in metrics %},
            toInt64(sum({{ m }}) over w_total) as {{ m }}_total
            {%- endfor %}{% endif %}
        from timeline
        window
            {%- for name, size in windows %}
            w_{{ name }} as (partition by {{ key }} order by bucket_number range between {{ size - 1 }} preceding and current row),
            {%- endfor %}
            w_total as (partition by {{ key }} order by bucket_number rows between unbounded preceding and current row)
    )
{%- endmacro %}
