"""A compiled fast path for the common case: a valid event.

Ingestion validates every record, and almost all of them are valid. For each contract this
module generates (once, at import) one straight-line Python function that answers only "is it
valid?"; the detailed validator, which names every reason, then runs only for the few that are
not. Both come from the same `FieldSpec`s, and the contract tests check they agree.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from contracts.catalog import CONTRACTS, ENVELOPE
from contracts.spec import EventContract, FieldSpec, Kind
from contracts.timestamps import is_utc_timestamp, timestamp_at_most

FastCheck = Callable[[Mapping[str, Any], datetime], bool]


def _bounds(spec: FieldSpec, size: str) -> list[str]:
    out = []
    if spec.min_length is not None:
        out.append(f"{size} >= {spec.min_length}")
    if spec.max_length is not None:
        out.append(f"{size} <= {spec.max_length}")
    return out


class _Compiler:
    def __init__(self) -> None:
        self.names = (f"v{i}" for i in itertools.count())
        self.constants: dict[str, Any] = {}

    def constant(self, value: Any) -> str:
        name = f"C{len(self.constants)}"
        self.constants[name] = value
        return name

    def value_ok(self, spec: FieldSpec, v: str) -> str:
        """An expression true when the non-null value `v` satisfies `spec`."""
        kind = spec.kind
        parts: list[str]
        if kind is Kind.STRING:
            parts = [f"type({v}) is str", *_bounds(spec, f"len({v})")]
        elif kind is Kind.ENUM:
            parts = [f"type({v}) is str", f"{v} in {self.constant(frozenset(spec.choices))}"]
        elif kind in (Kind.INT, Kind.FLOAT):
            parts = [f"type({v}) is int" if kind is Kind.INT else f"type({v}) in (int, float)"]
            if spec.minimum is not None:
                parts.append(f"{v} >= {spec.minimum!r}")
            if spec.maximum is not None:
                parts.append(f"{v} <= {spec.maximum!r}")
        elif kind is Kind.BOOL:
            parts = [f"type({v}) is bool"]
        elif kind is Kind.UUID:
            from contracts.validation import _UUID_RE

            parts = [f"type({v}) is str", f"{self.constant(_UUID_RE.match)}({v}) is not None"]
        elif kind is Kind.TIMESTAMP and spec.name == "occurred_at":
            # the envelope's event time: pattern, a real date and not after `limit`, parsed once
            parts = [f"type({v}) is str", f"TS_AT_MOST({v}, limit)"]
        elif kind is Kind.TIMESTAMP:
            parts = [f"type({v}) is str", f"IS_TS({v})"]
        elif kind in (Kind.STRING_LIST, Kind.INT_LIST):
            item = "str" if kind is Kind.STRING_LIST else "int"
            parts = [
                f"type({v}) is list",
                *_bounds(spec, f"len({v})"),
                f"all(type(x) is {item} for x in {v})",
            ]
        elif kind is Kind.OBJECT:
            parts = [f"type({v}) is dict", *(self.field_ok(item, v) for item in spec.items)]
        elif kind is Kind.OBJECT_LIST:
            x = next(self.names)
            inner = " and ".join(self.field_ok(item, x) for item in spec.items)
            parts = [
                f"type({v}) is list",
                *_bounds(spec, f"len({v})"),
                f"all(type({x}) is dict and {inner} for {x} in {v})",
            ]
        else:  # pragma: no cover - every kind is handled above
            raise AssertionError(kind)
        return "(" + " and ".join(parts) + ")"

    def field_ok(self, spec: FieldSpec, container: str) -> str:
        v = next(self.names)
        get = f"({v} := {container}.get({spec.name!r}))"
        if spec.required:
            return f"({get} is not None and {self.value_ok(spec, v)})"
        return f"({get} is None or {self.value_ok(spec, v)})"

    def compile(self, contract: EventContract) -> FastCheck:
        checks = [self.field_ok(spec, "p") for spec in (*ENVELOPE, *contract.fields)]
        versions = self.constant(frozenset(contract.supported_versions))
        # cross-field rules called one by one (no generator per event), none when there are none
        rules = [f"not {self.constant(rule.python)}(p)" for rule in contract.rules]
        source = (
            "def check(p, limit):\n"
            f"    return (p.get('schema_version') in {versions} and "
            + " and ".join([*checks, *rules])
            + ")\n"
        )
        namespace: dict[str, Any] = {
            "IS_TS": is_utc_timestamp,
            "TS_AT_MOST": timestamp_at_most,
            **self.constants,
        }
        exec(compile(source, f"<fast check {contract.event_type}>", "exec"), namespace)
        return namespace["check"]


FAST_CHECKS: dict[str, FastCheck] = {c.event_type: _Compiler().compile(c) for c in CONTRACTS}
