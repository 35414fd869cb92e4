"""The vocabulary event contracts are written in.

A contract is data, not code: the same field list drives the Python validator (for producers and
tests), the SQL validator (for bulk ingestion inside ClickHouse) and the raw tables' columns, so
the three cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    UUID = "uuid"
    TIMESTAMP = "timestamp"
    ENUM = "enum"
    STRING_LIST = "string_list"
    INT_LIST = "int_list"
    OBJECT = "object"
    OBJECT_LIST = "object_list"


@dataclass(frozen=True)
class FieldSpec:
    """One field of an event payload.

    `required` fields must be present and non-null; optional ones may be absent or null.
    `minimum`/`maximum` bound numbers, `min_length`/`max_length` bound strings and list lengths.
    """

    name: str
    kind: Kind
    required: bool = True
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    items: tuple[FieldSpec, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class Rule:
    """A check across fields, written once in Python and once in ClickHouse SQL.

    `python` gets the parsed payload (only called when every field is individually valid) and
    returns True when the event breaks the rule. `sql` is a ClickHouse boolean expression over
    `m`, the map of the line's top-level keys to their raw JSON values, true when the event breaks
    the rule. Both must agree; the
    contract tests check that on every bad event the generator can make.
    """

    reason: str
    python: Callable[[Mapping[str, Any]], bool]
    sql: str


@dataclass(frozen=True)
class EventContract:
    event_type: str
    family: str
    version: int
    fields: tuple[FieldSpec, ...]
    rules: tuple[Rule, ...] = ()
    doc: str = ""
    supported_versions: tuple[int, ...] = field(default=(1,))

    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)
