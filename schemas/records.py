"""Record classes of the topic contracts, with their JSON shapes.

``to_dict`` gives exactly the JSON object on the wire (``schema_version``
included) and ``from_dict`` reads one; consumers (the demo, the restock bot,
tests) use them. The worker's hot path encodes the same shapes directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

SCHEMA_VERSION = 1
STAGES = ("introduction", "growth", "maturity", "decline")
HORIZONS = (1, 7, 14)  # days ahead; each forecast is the total over those days
DEAD_LETTER_CODES = (
    "bad_json", "not_object", "missing_field", "wrong_type", "bad_value", "key_mismatch",
    "late", "future", "unknown_topic", "internal_error",
)


def _plain(obj) -> dict:
    d = asdict(obj)
    return {"schema_version": SCHEMA_VERSION, **d}


def _fields(cls, d: dict) -> dict:
    return {k: d[k] for k in cls.__dataclass_fields__ if k in d}


@dataclass(frozen=True, slots=True)
class Click:
    """A product view (``clicks``)."""

    event_id: str
    sku: str
    ts: int  # epoch ms UTC
    session_id: str | None = None
    user_id: str | None = None

    def to_dict(self) -> dict:
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Click":
        return cls(**_fields(cls, d))


@dataclass(frozen=True, slots=True)
class CartEvent:
    """Units added to or removed from a cart (``carts``)."""

    event_id: str
    sku: str
    ts: int
    qty: int
    action: str  # "add" | "remove"

    def to_dict(self) -> dict:
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CartEvent":
        return cls(**_fields(cls, d))


@dataclass(frozen=True, slots=True)
class Order:
    """An order line (``orders``)."""

    event_id: str
    order_id: str
    sku: str
    ts: int
    qty: int
    unit_price: float  # currency units per unit
    currency: str | None = None

    def to_dict(self) -> dict:
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Order":
        return cls(**_fields(cls, d))


@dataclass(frozen=True, slots=True)
class CatalogRecord:
    """A product's catalogue entry (``catalog``)."""

    sku: str
    title: str
    description: str
    category: str
    price: float | None = None
    launched_at: int | None = None  # epoch ms UTC

    def to_dict(self) -> dict:
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CatalogRecord":
        return cls(**_fields(cls, d))


@dataclass(frozen=True, slots=True)
class Quantiles:
    """Units sold over a horizon: p10 <= p50 <= p90."""

    p10: float
    p50: float
    p90: float


@dataclass(frozen=True, slots=True)
class Forecast:
    """A SKU's demand forecast at the close of a day (``forecasts``)."""

    sku: str
    as_of: int  # end of the closed day, epoch ms UTC
    horizons: dict[int, Quantiles]  # days ahead -> units over those days
    stage: str
    stage_probs: dict[str, float]
    model: dict[str, str] = field(default_factory=dict)  # {"name", "version"}
    calibrated: bool = False

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION, "sku": self.sku, "as_of": self.as_of,
            "horizons": {str(h): asdict(q) for h, q in self.horizons.items()},
            "stage": self.stage, "stage_probs": dict(self.stage_probs), "model": dict(self.model),
            "calibrated": self.calibrated,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Forecast":
        return cls(
            sku=d["sku"], as_of=d["as_of"],
            horizons={int(h): Quantiles(**q) for h, q in d["horizons"].items()},
            stage=d["stage"], stage_probs=dict(d["stage_probs"]), model=dict(d["model"]),
            calibrated=d["calibrated"],
        )


@dataclass(frozen=True, slots=True)
class StageAlert:
    """A confirmed change of lifecycle stage (``stage-alerts``)."""

    sku: str
    as_of: int
    previous_stage: str | None
    stage: str
    confidence: float
    lead_time: dict  # {"days": int, "p50": units, "p90": units}
    evidence: dict  # {"growth_7d", "units_7d", "units_28d", "days_since_first_sale", ...}

    def to_dict(self) -> dict:
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> "StageAlert":
        return cls(**_fields(cls, d))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A rejected input record and why (``dead-letters``)."""

    source_topic: str
    partition: int
    offset: int
    key: str | None
    value_b64: str
    value_text: str | None
    reason: dict  # {"code": one of DEAD_LETTER_CODES, "message": str}
    at: int  # wall clock, epoch ms

    def to_dict(self) -> dict:
        return _plain(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DeadLetter":
        return cls(**_fields(cls, d))
