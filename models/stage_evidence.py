"""Which lifecycle stages a SKU's own sales allow: a stage must agree with what the shop sees.

The stage head reads a stage off 56 days of history, and on real data it can
be wrong in the way that costs most: a restocking bot that stops ordering on
a ``decline`` alert starves a product whose sales are growing. So a stage is
only taken up when the sales show it, and left when they contradict it:

* ``decline``: taken up when the last 28 days sold less than
  :attr:`EvidenceRules.decline_enter` × the 28 before, left when they sold
  more than :attr:`~EvidenceRules.decline_stay` × (falling sales, never
  growing ones);
* ``growth``: taken up above :attr:`~EvidenceRules.growth_enter` × the 28
  days before, left below :attr:`~EvidenceRules.growth_stay` ×;
* ``introduction``: taken up within :attr:`~EvidenceRules.young_days` of
  the first sale (or before any), left after
  :attr:`~EvidenceRules.intro_max_days`;
* ``maturity``: always allowed, the stage of a product selling at a level.

Entering and leaving thresholds differ (hysteresis), so a SKU whose ratio
wobbles around 1 does not flip. Ratios are of units plus one half, so one
unit after none reads as growth and a sale or two do not swing a slow
seller. Pure: arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INTRODUCTION, GROWTH, MATURITY, DECLINE = range(4)
WINDOW = 28  # days in each of the two compared windows


@dataclass(frozen=True)
class EvidenceRules:
    """Thresholds on the ratio of the last 28 days' units to the 28 before, and on age in days."""

    decline_enter: float = 0.9
    decline_stay: float = 1.1
    growth_enter: float = 1.1
    growth_stay: float = 0.9
    young_days: int = 28
    intro_max_days: int = 56

    def __post_init__(self) -> None:
        if not (self.decline_enter <= self.decline_stay and self.growth_stay <= self.growth_enter):
            raise ValueError("a stage must be easier to keep than to take up: need decline_enter <= decline_stay "
                             "and growth_stay <= growth_enter")
        if not 0 <= self.young_days <= self.intro_max_days:
            raise ValueError("need 0 <= young_days <= intro_max_days")


def sales_ratio(units: np.ndarray) -> np.ndarray:
    """``(n,)`` (units of the last 28 days + ½) / (units of the 28 before + ½); ``units`` ``(n, days)`` per day.

    A history shorter than 56 days compares its two halves.
    """
    units = np.asarray(units, dtype=np.float64)
    w = min(WINDOW, units.shape[-1] // 2)
    if w < 1:
        raise ValueError(f"need at least 2 days of units, got {units.shape[-1]}")
    last = units[:, -w:].sum(axis=1)
    before = units[:, -2 * w: -w].sum(axis=1)
    return (last + 0.5) / (before + 0.5)


def allowed_stages(units: np.ndarray, age_days: np.ndarray, rules: EvidenceRules) -> tuple[np.ndarray, np.ndarray]:
    """``(enter, stay)``, both ``(n, 4)`` bool: stages a SKU may take up today, and stages it may keep.

    ``units``: ``(n, days)`` units sold per day, oldest first, ending
    today; ``age_days``: ``(n,)`` days since the first sale, negative when
    the SKU never sold. ``stay`` includes ``enter``.
    """
    ratio = sales_ratio(units)
    age = np.asarray(age_days, dtype=np.float64)
    never = age < 0
    n = len(ratio)
    enter = np.zeros((n, 4), dtype=bool)
    stay = np.zeros((n, 4), dtype=bool)
    enter[:, INTRODUCTION] = never | (age <= rules.young_days)
    stay[:, INTRODUCTION] = never | (age <= rules.intro_max_days)
    enter[:, GROWTH] = ~never & (ratio > rules.growth_enter)
    stay[:, GROWTH] = ~never & (ratio >= rules.growth_stay)
    enter[:, MATURITY] = stay[:, MATURITY] = True
    enter[:, DECLINE] = ~never & (ratio < rules.decline_enter)
    stay[:, DECLINE] = ~never & (ratio <= rules.decline_stay)
    return enter, stay | enter
