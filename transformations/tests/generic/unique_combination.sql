{#-
    The combination of `columns` is unique in the model (a composite primary key).
    Fails with one row per duplicated key, and how many rows share it.
-#}
{% test unique_combination(model, columns) %}

select
    {{ columns | join(', ') }},
    count() as rows_with_this_key
from {{ model }}
group by {{ columns | join(', ') }}
having count() > 1

{% endtest %}
