"""Topic contracts: record classes and the JSON Schema of every message.

The wire format only: imports neither torch nor faust nor the app. ``validate``
checks a decoded message against its schema; the worker's hot path uses its
own fast decoder (stream_app.core.decode), and the tests check the two agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources

from jsonschema import Draft202012Validator, ValidationError

from schemas.records import (
    DEAD_LETTER_CODES,
    HORIZONS,
    SCHEMA_VERSION,
    STAGES,
    CartEvent,
    CatalogRecord,
    Click,
    DeadLetter,
    DeadLetterReason,
    Forecast,
    HorizonQuantiles,
    InventoryLevel,
    Order,
    Quantiles,
    StageAlert,
    VERSIONS,
)

CONTRACTS = ("clicks", "carts", "orders", "catalog", "inventory", "forecasts", "stage-alerts", "dead-letters")

__all__ = [
    "CONTRACTS", "DEAD_LETTER_CODES", "HORIZONS", "SCHEMA_VERSION", "STAGES", "CartEvent", "CatalogRecord",
    "Click", "DeadLetter", "DeadLetterReason", "Forecast", "HorizonQuantiles", "InventoryLevel", "Order", "Quantiles", "StageAlert",
    "VERSIONS", "load_schema", "validate", "validator",
]


def load_schema(name: str) -> dict:
    """The JSON Schema (draft 2020-12) of contract ``name``, one of :data:`CONTRACTS`.

    Read as package data, so it works from an installed wheel too. Raises
    ``ValueError`` for an unknown name.
    """
    if name not in CONTRACTS:
        raise ValueError(f"unknown contract {name!r}; one of {', '.join(CONTRACTS)}")
    text = resources.files(__name__).joinpath(f"{name}.v{VERSIONS[name]}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    """A validator of contract ``name``, built once per name (schema checks only)."""
    return Draft202012Validator(load_schema(name))


def _ordered(obj: dict, path: tuple, names: tuple[str, ...]) -> Iterator[ValidationError]:
    values = [obj[n] for n in names]
    if any(a > b for a, b in zip(values, values[1:])):
        shown = ", ".join(f"{n}={v}" for n, v in zip(names, values))
        yield ValidationError(f"quantiles must satisfy {' <= '.join(names)}: {shown}", path=path, validator="ordering")


def _ordering_errors(name: str, obj: dict) -> Iterator[ValidationError]:
    # Runs only on schema-valid objects, so the fields exist and are numbers.
    if name == "forecasts":
        for h, q in obj["horizons"].items():
            yield from _ordered(q, ("horizons", h), ("p10", "p50", "p90"))
    elif name == "stage-alerts":
        yield from _ordered(obj["lead_time"], ("lead_time",), ("p50", "p90"))


def validate(name: str, obj: object) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``obj`` satisfies contract ``name``.

    Beyond the schema, checks what JSON Schema cannot express: quantiles in
    order (``p10 <= p50 <= p90`` per forecast horizon, ``p50 <= p90`` for an
    alert's lead time; all in units sold).
    """
    validator(name).validate(obj)
    for err in _ordering_errors(name, obj):  # type: ignore[arg-type]
        raise err
