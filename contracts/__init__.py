"""Versioned contracts for every event the app emits, and their validation."""

from contracts.catalog import (
    CONTRACTS,
    CONTRACTS_BY_TYPE,
    EVENT_TYPES_BY_FAMILY,
    FAMILIES,
    family_fields,
)
from contracts.spec import EventContract, FieldSpec, Kind
from contracts.validation import validate_event, validate_line

__all__ = [
    "CONTRACTS",
    "CONTRACTS_BY_TYPE",
    "EVENT_TYPES_BY_FAMILY",
    "FAMILIES",
    "EventContract",
    "FieldSpec",
    "Kind",
    "family_fields",
    "validate_event",
    "validate_line",
]
