"""Which lifecycle stages a SKU's own sales allow: a stage must agree with what the shop sees.

The stage head reads a stage off 56 days of history, and on real data it can
be wrong in the way that costs most: a restocking bot that stops ordering on
a ``decline`` alert starves a product whose sales are growing. So a stage is
only taken up when the sales show it, and left when they contradict it:

* ``decline``: taken up when the last 28 days sold less than
  :attr:`EvidenceRules.decline_enter` × the 28 before, or the last
  :attr:`~EvidenceRules.recent_days` sold at a daily rate below that
  multiple of the 28 days before them (a fall shows in two weeks long
  before it moves a 28-day total), and the fall is significant; left when
  the last 28 days sold more than :attr:`~EvidenceRules.decline_stay` × the
  28 before: falling sales, never growing ones;
* ``growth``: taken up above :attr:`~EvidenceRules.growth_enter` × the 28
  days before when the rise is significant, left below
  :attr:`~EvidenceRules.growth_stay` ×;
* ``introduction``: taken up within :attr:`~EvidenceRules.young_days` of
  the first sale (or before any), left after
  :attr:`~EvidenceRules.intro_max_days`;
* ``maturity``: always allowed, the stage of a product selling at a level
  or too slowly to tell.

Entering and leaving thresholds differ (hysteresis), so a SKU whose ratio
wobbles around 1 does not flip. *Significant* is a Poisson z-score of the
change in daily rate beyond :attr:`~EvidenceRules.enter_z`
(:func:`rate_change_z`): a slow seller's 28-day totals (3 units, then 5)
cross any ratio threshold by chance, and a stage taken up on such a
crossing is a false alert, left again at the next one. Ratios are of units
plus one half, so one unit after none reads as a rise. Pure: arrays in,
arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INTRODUCTION, GROWTH, MATURITY, DECLINE = range(4)
WINDOW = 28  # days in each of the two compared windows


@dataclass(frozen=True)
class EvidenceRules:
    """Thresholds on the ratio of the last 28 days' units to the 28 before, and on age in days.

    ``recent_days``: the short window whose daily rate, against the 28 days
    before it, may also show a decline (0: the 28-day ratio alone);
    ``enter_z``: the z-score (:func:`rate_change_z`) a rise or fall needs
    before growth or decline is taken up (0: the ratio alone); ``exit_z``:
    the same for the contradiction that makes a SKU leave one (0: leave on
    the ratio alone, so a decline never outlives a rise past ``decline_stay``).
    """

    decline_enter: float = 0.9
    decline_stay: float = 1.1
    growth_enter: float = 1.1
    growth_stay: float = 0.9
    recent_days: int = 14
    enter_z: float = 2.0
    exit_z: float = 0.0
    young_days: int = 28
    intro_max_days: int = 56

    def __post_init__(self) -> None:
        if not (self.decline_enter <= self.decline_stay and self.growth_stay <= self.growth_enter):
            raise ValueError("a stage must be easier to keep than to take up: need decline_enter <= decline_stay "
                             "and growth_stay <= growth_enter")
        if not 0 <= self.recent_days < WINDOW:
            raise ValueError(f"recent_days must be in [0, {WINDOW}) (0: the 28-day ratio alone)")
        if self.enter_z < 0 or self.exit_z < 0:
            raise ValueError("enter_z and exit_z must be >= 0 (0: the ratio alone)")
        if not 0 <= self.young_days <= self.intro_max_days:
            raise ValueError("need 0 <= young_days <= intro_max_days")


def _totals(units: np.ndarray, last_days: int = WINDOW) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Units of the last ``last_days`` and of the 28 days before them, and the two lengths (shorter histories: halves)."""
    units = np.asarray(units, dtype=np.float64)
    have = units.shape[-1]
    if have < 2:
        raise ValueError(f"need at least 2 days of units, got {have}")
    last_n = min(last_days, have // 2)
    before_n = min(WINDOW, have - last_n)
    return (units[:, have - last_n:].sum(axis=1), units[:, have - last_n - before_n: have - last_n].sum(axis=1),
            last_n, before_n)


def sales_ratio(units: np.ndarray, days: int = WINDOW) -> np.ndarray:
    """``(n,)`` daily rate of the last ``days`` over that of the 28 days before them (units + ½ each).

    ``units`` ``(n, days)`` per day; with ``days`` 28, (units of the last 28
    days + ½) / (units of the 28 before + ½). A history shorter than 56 days
    compares its two halves.
    """
    last, before, a, b = _totals(units, days)
    return ((last + 0.5) / a) / ((before + 0.5) / b)


def rate_change_z(units: np.ndarray, days: int = WINDOW) -> np.ndarray:
    """``(n,)`` z-score of the change in daily rate from the 28 days before the last ``days`` to those days.

    (L/a − B/b) / √(L/a² + B/b² + 1/(a·b)) for L units over the last a
    days and B over the b before: the rates' difference over its Poisson
    standard error ((L − B) / √(L + B + 1) when a = b = 28). Positive when
    sales rose; under equal rates ``|z| > 2`` is rarely noise (bulk orders
    make real counts overdispersed: a change reads as significant sooner).

    >>> import numpy as np
    >>> flat = np.r_[np.zeros(28), np.ones(28)]  # 0 units, then 28
    >>> [round(float(z), 2) for z in rate_change_z(np.stack([flat, np.full(56, 0.1)]))]
    [5.2, 0.0]
    """
    last, before, a, b = _totals(units, days)
    return (last / a - before / b) / np.sqrt(last / a**2 + before / b**2 + 1.0 / (a * b))


def allowed_stages(units: np.ndarray, age_days: np.ndarray, rules: EvidenceRules) -> tuple[np.ndarray, np.ndarray]:
    """``(enter, stay)``, both ``(n, 4)`` bool: stages a SKU may take up today, and stages it may keep.

    ``units``: ``(n, days)`` units sold per day, oldest first, ending
    today; ``age_days``: ``(n,)`` days since the first sale, negative when
    the SKU never sold. ``stay`` includes ``enter``.
    """
    ratio = sales_ratio(units)
    z = rate_change_z(units)
    falling = (ratio < rules.decline_enter) & (z < -rules.enter_z)
    if rules.recent_days:
        falling |= ((sales_ratio(units, rules.recent_days) < rules.decline_enter)
                    & (rate_change_z(units, rules.recent_days) < -rules.enter_z))
    age = np.asarray(age_days, dtype=np.float64)
    never = age < 0
    n = len(ratio)
    enter = np.zeros((n, 4), dtype=bool)
    stay = np.zeros((n, 4), dtype=bool)
    enter[:, INTRODUCTION] = never | (age <= rules.young_days)
    stay[:, INTRODUCTION] = never | (age <= rules.intro_max_days)
    enter[:, GROWTH] = ~never & (ratio > rules.growth_enter) & (z > rules.enter_z)
    stay[:, GROWTH] = ~never & ((ratio >= rules.growth_stay) | (z >= -rules.exit_z))
    enter[:, MATURITY] = stay[:, MATURITY] = True
    enter[:, DECLINE] = ~never & falling
    stay[:, DECLINE] = ~never & ((ratio <= rules.decline_stay) | (z <= rules.exit_z))
    return enter, stay | enter
