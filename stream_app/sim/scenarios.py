"""Scenarios the simulator can lay over the plain Bass lifecycles, and their knobs.

Each scenario is a named effect with a known ground truth, so a model and the
stage tracker can be scored on it:

* ``level_shift``: from one day on, all demand of one category is multiplied
  by a factor (a competitor leaves, a channel closes). Stages do not change.
* ``promotion``: some SKUs get one promotion of ``promotion_days`` days:
  demand (views, carts, orders) times ``1 + promotion_uplift``, price times
  ``1 - promotion_discount``. Stages do not change.
* ``early_decline``: some SKUs stop growing before their Bass peak; from a
  day in their growth stage on, demand decays exponentially with time
  constant ``decline_tau_days``. Their true stage is ``decline`` from then on.
* ``seasonal``: some SKUs carry Christmas words and are launched so that
  their Bass peak falls on 10 December; from 26 December their demand decays
  like an early decline (true stage ``decline``).
* ``slow_movers``: some SKUs have tiny markets and slow lifecycles, so most
  of their days have no sale (intermittent demand).

Not part of ``all`` (named on its own; the shipped model's training runs predate it):

* ``conversion_shift``: from one day on, every SKU gets ``conversion_shift_factor``
  times the clicks and cart adds per order (a new traffic source that
  browses much and buys as before): a regime change in how the funnel
  leads orders, which a model trained before it has not seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCENARIOS = ("level_shift", "promotion", "early_decline", "seasonal", "slow_movers")
OPT_IN = ("conversion_shift",)  # named on their own, never in "all"

# Kinds of SKU; a SKU is of exactly one kind (promotions and level shifts come on top).
REGULAR, SEASONAL, SLOW_MOVER, EARLY_DECLINE = range(4)
SKU_KINDS = ("regular", "seasonal", "slow_mover", "early_decline")


@dataclass(frozen=True)
class Scenarios:
    """Which scenarios are on, and their sizes (shares are of all SKUs)."""

    enabled: frozenset = field(default_factory=lambda: frozenset(SCENARIOS))
    seasonal_share: float = 0.10
    slow_mover_share: float = 0.15
    early_decline_share: float = 0.10
    promotion_share: float = 0.15
    promotion_days: int = 7
    promotion_uplift: float = 1.0  # extra demand during a promotion: 1.0 doubles it
    promotion_discount: float = 0.2  # price cut during a promotion, share of list price
    level_shift_at: float = 0.6  # day of the level shift, as a share of the simulated days
    level_shift_factors: tuple = (0.6, 1.6)  # one of these is drawn
    decline_tau_days: float = 10.0  # time constant of an early or post-Christmas decline, days
    conversion_shift_at: float = 0.6  # day of the conversion shift, as a share of the simulated days
    conversion_shift_factor: float = 3.0  # clicks and cart adds per order from then on, times this

    def __post_init__(self) -> None:
        unknown = set(self.enabled) - set(SCENARIOS) - set(OPT_IN)
        if unknown:
            raise ValueError(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS + OPT_IN)}")
        shares = [self.seasonal_share, self.slow_mover_share, self.early_decline_share]
        if min(shares + [self.promotion_share]) < 0 or sum(shares) > 1 or self.promotion_share > 1:
            raise ValueError("scenario shares must be >= 0, and seasonal + slow mover + early decline <= 1")

    @classmethod
    def parse(cls, text: str) -> "Scenarios":
        """From a comma-separated list of :data:`SCENARIOS`, ``all`` or ``none``."""
        text = text.strip().lower()
        if text == "all":
            return cls()
        if text in ("none", ""):
            return cls(enabled=frozenset())
        return cls(enabled=frozenset(s.strip().replace("-", "_") for s in text.split(",") if s.strip()))

    def on(self, name: str) -> bool:
        """Whether scenario ``name`` is enabled."""
        return name in self.enabled

    def share(self, name: str) -> float:
        """The share of SKUs of a SKU kind's scenario (0 when it is off)."""
        shares = {"seasonal": self.seasonal_share, "slow_movers": self.slow_mover_share,
                  "early_decline": self.early_decline_share, "promotion": self.promotion_share}
        return shares[name] if self.on(name) else 0.0
