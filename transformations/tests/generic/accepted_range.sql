{#-
    Every non-null value of the column lies in [min_value, max_value] (either bound optional).
    Fails with one row per offending value.
-#}
{% test accepted_range(model, column_name, min_value=none, max_value=none) %}

{%- set bounds = [] -%}
{%- if min_value is not none -%}{%- do bounds.append(column_name ~ ' >= ' ~ min_value) -%}{%- endif -%}
{%- if max_value is not none -%}{%- do bounds.append(column_name ~ ' <= ' ~ max_value) -%}{%- endif -%}

select {{ column_name }} as value_out_of_range
from {{ model }}
where {{ column_name }} is not null
    and not ({{ bounds | join(' and ') if bounds else 'true' }})

{% endtest %}
