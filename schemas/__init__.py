"""Topic contracts: record classes and the JSON Schema of every message.

The wire format only: imports neither torch nor the app. ``validate`` checks
a decoded message against its schema; the worker's hot path uses its own
fast decoder (stream_app.decode), and the tests check the two agree.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from jsonschema import Draft202012Validator

from schemas.records import (
    DEAD_LETTER_CODES,
    HORIZONS,
    SCHEMA_VERSION,
    STAGES,
    CartEvent,
    CatalogRecord,
    Click,
    DeadLetter,
    Forecast,
    Order,
    Quantiles,
    StageAlert,
)

CONTRACTS = ("clicks", "carts", "orders", "catalog", "forecasts", "stage-alerts", "dead-letters")

__all__ = [
    "CONTRACTS", "DEAD_LETTER_CODES", "HORIZONS", "SCHEMA_VERSION", "STAGES", "CartEvent", "CatalogRecord",
    "Click", "DeadLetter", "Forecast", "Order", "Quantiles", "StageAlert", "load_schema", "validate", "validator",
]


def load_schema(name: str) -> dict:
    """The JSON Schema of contract ``name`` (one of :data:`CONTRACTS`)."""
    if name not in CONTRACTS:
        raise ValueError(f"unknown contract {name!r}; one of {', '.join(CONTRACTS)}")
    text = resources.files(__name__).joinpath(f"{name}.v1.schema.json").read_text()
    return json.loads(text)


@lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    """A cached validator for contract ``name``."""
    return Draft202012Validator(load_schema(name))


def validate(name: str, obj: object) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``obj`` satisfies contract ``name``."""
    validator(name).validate(obj)
