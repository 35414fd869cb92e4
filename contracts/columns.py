"""The contracts as ClickHouse column types, so raw tables follow the contracts by construction.

(Validating inside ClickHouse with generated JSON* expressions was tried and measured slower than
the Python validator on this 2-core machine: 25-65k lines/s against about 63k; see docs/benchmarks.md.)
"""

from __future__ import annotations

from contracts.spec import FieldSpec, Kind

# --- typed extraction of valid events into raw-table columns ---------------------------------

_SCALAR_TYPES = {
    Kind.STRING: "String",
    Kind.ENUM: "LowCardinality(String)",
    Kind.INT: "Int64",
    Kind.FLOAT: "Float64",
    Kind.BOOL: "Bool",
    Kind.UUID: "UUID",
    Kind.TIMESTAMP: "DateTime64(3, 'UTC')",
}


def _tuple_type(items: tuple[FieldSpec, ...]) -> str:
    parts = [f"{i.name} {clickhouse_type(i)}" for i in items]
    return f"Tuple({', '.join(parts)})"


def clickhouse_type(spec: FieldSpec) -> str:
    """The raw-table column type of a field; optional scalars are Nullable, lists default to []."""
    kind = spec.kind
    if kind is Kind.STRING_LIST:
        return "Array(String)"
    if kind is Kind.INT_LIST:
        return "Array(Int64)"
    if kind is Kind.OBJECT_LIST:
        return f"Array({_tuple_type(spec.items)})"
    if kind is Kind.OBJECT:
        return _tuple_type(spec.items)
    base = _SCALAR_TYPES[kind]
    if spec.required:
        return base
    if base.startswith("LowCardinality("):
        return f"LowCardinality(Nullable({base[len('LowCardinality(') : -1]}))"
    return f"Nullable({base})"
