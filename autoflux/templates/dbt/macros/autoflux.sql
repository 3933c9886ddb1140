{#-
  autoflux_merge_splits(train, test, split_column): train and test rows in one relation.
  Columns are aligned by name (train's order, then test-only columns); a column missing on one
  side is null there, so the target is null on test rows. split_column says 'train' or 'test'.
-#}
{% macro autoflux_merge_splits(train, test, split_column='split') -%}
    {%- set train_columns = adapter.get_columns_in_relation(train) -%}
    {%- set test_columns = adapter.get_columns_in_relation(test) -%}
    {%- set train_names = train_columns | map(attribute='name') | map('lower') | list -%}
    {%- set test_names = test_columns | map(attribute='name') | map('lower') | list -%}
    {%- set all_columns = train_columns + (test_columns | rejectattr('name', 'in', train_columns | map(attribute='name') | list) | list) -%}
    {%- for relation, names, label in [(train, train_names, 'train'), (test, test_names, 'test')] %}
    {%- if not loop.first %}
union all
    {%- endif %}
select
    {%- for column in all_columns %}
    {% if column.name | lower in names -%}
        {{ adapter.quote(column.name) }}
    {%- else -%}
        cast(null as {{ column.data_type }}) as {{ adapter.quote(column.name) }}
    {%- endif %},
    {%- endfor %}
    '{{ label }}' as {{ adapter.quote(split_column) }}
from {{ relation }}
    {%- endfor %}
{%- endmacro %}

{#- autoflux_feature_columns(relation): the relation's columns except AutoFlux's lineage columns (_*). -#}
{% macro autoflux_feature_columns(relation) -%}
    {%- set names = [] -%}
    {%- for column in adapter.get_columns_in_relation(relation) if not column.name.startswith('_') -%}
        {%- do names.append(adapter.quote(column.name)) -%}
    {%- endfor -%}
    {{ names | join(',\n    ') }}
{%- endmacro %}
