"""Record classes of the topic contracts, with their JSON shapes.

``to_dict`` gives exactly the JSON object on the wire (``schema_version``
included) and ``from_dict`` reads one; consumers (the demo, the restock bot,
tests) use them. The worker's hot path encodes the same shapes directly.

``from_dict`` does not validate types: call :func:`schemas.validate` first on
anything that came off the wire. It ignores fields it does not know, because
producers may add fields to input events.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

SCHEMA_VERSION = 1  # of the input contracts and the dead letters
# Contract versions by name: v2 of forecasts added id, active, observed, v3 cold_start; v2 of stage-alerts added id.
VERSIONS = {"clicks": 1, "carts": 1, "orders": 1, "catalog": 1, "inventory": 1, "forecasts": 3,
            "stage-alerts": 2, "dead-letters": 1}
STAGES = ("introduction", "growth", "maturity", "decline")
HORIZONS = (1, 7, 14)  # days ahead; each forecast is the total over those days
# "duplicate" is deliberately absent: duplicates are dropped and counted, not
# dead-lettered. "internal_error" covers a batch the worker itself failed on,
# so its records are not lost silently.
DEAD_LETTER_CODES = (
    "bad_json", "not_object", "missing_field", "wrong_type", "bad_value", "key_mismatch",
    "late", "future", "unknown_topic", "internal_error",
)


def _plain(obj: Any, version: int = SCHEMA_VERSION) -> dict:
    return {"schema_version": version, **asdict(obj)}


def _check_version(d: dict, expected: int = SCHEMA_VERSION) -> None:
    # A message of another contract version must not be read as if it were
    # this one; a missing version is read as v1, like the worker's decoder does.
    version = d.get("schema_version", 1)
    if type(version) is not int or version != expected:
        raise ValueError(f"unsupported schema_version {version!r}; this code reads {expected}")


def _fields(cls: type, d: dict, version: int = SCHEMA_VERSION) -> dict:
    _check_version(d, version)
    return {k: d[k] for k in cls.__dataclass_fields__ if k in d}


@dataclass(frozen=True, slots=True)
class Click:
    """A product view (``clicks``). ``ts``: event time, epoch ms UTC."""

    event_id: str
    sku: str
    ts: int
    session_id: str | None = None
    user_id: str | None = None

    def to_dict(self) -> dict:
        """The ``clicks`` JSON object (``ts`` in epoch ms UTC)."""
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> Click:
        """Read a decoded ``clicks`` message; unknown fields are ignored."""
        return cls(**_fields(cls, d))


@dataclass(frozen=True, slots=True)
class CartEvent:
    """Units put in or taken out of a cart (``carts``).

    ``ts``: event time, epoch ms UTC; ``qty``: units, >= 1; ``action``:
    ``"add"`` or ``"remove"``.
    """

    event_id: str
    sku: str
    ts: int
    qty: int
    action: str

    def to_dict(self) -> dict:
        """The ``carts`` JSON object (``ts`` in epoch ms UTC, ``qty`` in units)."""
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> CartEvent:
        """Read a decoded ``carts`` message; unknown fields are ignored."""
        return cls(**_fields(cls, d))


@dataclass(frozen=True, slots=True)
class Order:
    """An order line (``orders``).

    ``ts``: event time, epoch ms UTC; ``qty``: units, >= 1; ``unit_price``:
    currency units per unit, >= 0; ``currency``: ISO 4217 code or None.
    """

    event_id: str
    order_id: str
    sku: str
    ts: int
    qty: int
    unit_price: float
    currency: str | None = None

    def to_dict(self) -> dict:
        """The ``orders`` JSON object (``ts`` in epoch ms UTC, ``qty`` in units)."""
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> Order:
        """Read a decoded ``orders`` message; unknown fields are ignored."""
        return cls(**_fields(cls, d))


@dataclass(frozen=True, slots=True)
class CatalogRecord:
    """A product's catalogue entry (``catalog``).

    ``price``: list price in currency units or None; ``launched_at``: epoch ms
    UTC or None.
    """

    sku: str
    title: str
    description: str
    category: str
    price: float | None = None
    launched_at: int | None = None

    def to_dict(self) -> dict:
        """The ``catalog`` JSON object (``launched_at`` in epoch ms UTC)."""
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> CatalogRecord:
        """Read a decoded ``catalog`` message; unknown fields are ignored."""
        return cls(**_fields(cls, d))


@dataclass(frozen=True, slots=True)
class InventoryLevel:
    """A SKU's stock on hand (``inventory``, optional): ``on_hand`` units counted at ``ts`` (epoch ms UTC)."""

    sku: str
    on_hand: float
    ts: int

    def to_dict(self) -> dict:
        """The ``inventory`` JSON object."""
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> InventoryLevel:
        """Read a decoded ``inventory`` message; unknown fields are ignored."""
        return cls(**_fields(cls, d))


@dataclass(frozen=True, slots=True)
class HorizonQuantiles:
    """Quantiles of units sold summed over a horizon: 0 <= p10 <= p50 <= p90.

    The ordering is checked here because JSON Schema cannot express it.
    """

    p10: float
    p50: float
    p90: float

    def __post_init__(self) -> None:
        if not 0 <= self.p10 <= self.p50 <= self.p90:
            raise ValueError(f"quantiles must satisfy 0 <= p10 <= p50 <= p90, got {self.p10}, {self.p50}, {self.p90}")


# The name the first version of this module used.
Quantiles = HorizonQuantiles


@dataclass(frozen=True, slots=True)
class Forecast:
    """A SKU's demand forecast at the close of a day (``forecasts``).

    ``as_of``: end of the closed daily bucket, epoch ms UTC; ``horizons``:
    days ahead (each of :data:`HORIZONS`) -> units summed over those days;
    ``stage_probs``: stage -> probability; ``model``: ``{"name", "version"}`` plus ``fallback_reason`` when the baseline stood in.
    ``id``: ``sku/as_of/name:version``, the same for a forecast delivered
    twice; ``active``: False on the last forecast (zeros) of a SKU that went
    quiet; ``observed``: units sold that day, over 7 and 28 days, and clicks
    over 7 days, from the worker's window; ``cold_start``: True on the
    forecast of a SKU that never sold, made from what the launches nearest
    by text sold in their first days (the key is absent otherwise; v3
    added it).
    """

    id: str
    sku: str
    as_of: int
    horizons: dict[int, HorizonQuantiles]
    stage: str
    stage_probs: dict[str, float]
    model: dict[str, str]
    observed: dict[str, float]
    calibrated: bool = False
    active: bool = True
    cold_start: bool = False

    def to_dict(self) -> dict:
        """The ``forecasts`` JSON object; horizon keys become strings ("1", "7", "14")."""
        out = {
            "schema_version": VERSIONS["forecasts"], "id": self.id, "sku": self.sku, "as_of": self.as_of,
            "active": self.active, "horizons": {str(h): asdict(q) for h, q in self.horizons.items()},
            "stage": self.stage, "stage_probs": dict(self.stage_probs), "model": dict(self.model),
            "calibrated": self.calibrated, "observed": dict(self.observed),
        }
        if self.cold_start:
            out["cold_start"] = True
        return out

    @classmethod
    def from_dict(cls, d: dict) -> Forecast:
        """Read a decoded ``forecasts`` message; horizon keys become ints (days)."""
        _check_version(d, VERSIONS["forecasts"])
        return cls(
            id=d["id"], sku=d["sku"], as_of=d["as_of"],
            horizons={int(h): HorizonQuantiles(q["p10"], q["p50"], q["p90"]) for h, q in d["horizons"].items()},
            stage=d["stage"], stage_probs=dict(d["stage_probs"]), model=dict(d["model"]),
            observed=dict(d["observed"]), calibrated=d["calibrated"], active=d["active"],
            cold_start=bool(d.get("cold_start", False)),
        )


@dataclass(frozen=True, slots=True)
class StageAlert:
    """An alert on ``stage-alerts``: a confirmed change of lifecycle stage, or low cover on a growing SKU.

    ``as_of``: end of the closed daily bucket, epoch ms UTC; ``kind``:
    ``"stage_change"`` or ``"low_cover"``; ``confidence``: of a stage
    change, the share of such alerts that were right on validation data
    (the checkpoint's map, models/confidence.py; the raw tracker support
    when the checkpoint has none), of low cover the smoothed probability
    of the current stage; ``lead_time``: ``{"days": int >= 1, "p50": units,
    "p90": units}``; ``evidence``: ``{"growth_7d": ratio - 1 or None,
    "units_7d": units, "units_28d": units, "days_since_first_sale": days or
    None, ...}`` (more keys allowed); ``inventory`` (with an inventory
    topic): ``{"on_hand": units, "on_hand_ts": epoch ms, "days_of_cover":
    days or None, "reorder_qty": units, "service_level": 0..1}``;
    ``id``: ``sku/as_of/kind``, the same for an alert delivered twice.
    """

    id: str
    sku: str
    as_of: int
    kind: str
    previous_stage: str | None
    stage: str
    confidence: float
    lead_time: dict[str, Any]
    evidence: dict[str, Any]
    inventory: dict[str, Any] | None = None

    def to_dict(self) -> dict:
        """The ``stage-alerts`` JSON object (``as_of`` in epoch ms UTC); ``inventory`` only when known."""
        d = _plain(self, VERSIONS["stage-alerts"])
        if d["inventory"] is None:
            del d["inventory"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> StageAlert:
        """Read a decoded ``stage-alerts`` message."""
        return cls(**_fields(cls, d, VERSIONS["stage-alerts"]))


@dataclass(frozen=True, slots=True)
class DeadLetterReason:
    """Why a record was rejected: ``code`` (one of :data:`DEAD_LETTER_CODES`) and a sentence."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected input record and why (``dead-letters``).

    ``key``: the message key decoded as UTF-8 with replacement, or None;
    ``value_b64``: the original value bytes, base64; ``value_text``: the
    value as UTF-8 text when it decodes, else None; ``at``: wall clock when
    it was dead-lettered, epoch ms.
    """

    source_topic: str
    partition: int
    offset: int
    key: str | None
    value_b64: str
    value_text: str | None
    reason: DeadLetterReason
    at: int

    def to_dict(self) -> dict:
        """The ``dead-letters`` JSON object (``at`` in epoch ms)."""
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> DeadLetter:
        """Read a decoded ``dead-letters`` message."""
        f = _fields(cls, d)
        f["reason"] = DeadLetterReason(d["reason"]["code"], d["reason"]["message"])
        return cls(**f)
