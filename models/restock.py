"""Restocking arithmetic on calibrated demand quantiles: days of cover and newsvendor order sizes.

Pure: arrays in, arrays out. Demand over the lead time is known by three
quantiles (p10, p50, p90 units); between and beyond them it is taken as
lognormal in ``1 + units`` (the scale the calibration works on), fitted
through p50 with the spread of the p10–p90 interval, so any service level
gets a quantile and a skewed, zero-heavy demand keeps its long right tail.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

Z90 = NormalDist().inv_cdf(0.9)


def demand_quantile(p10: np.ndarray, p50: np.ndarray, p90: np.ndarray, level: float) -> np.ndarray:
    """Units of demand not exceeded with probability ``level`` (0 < level < 1).

    Exact at 0.1, 0.5 and 0.9; elsewhere from a lognormal on ``1 + units``
    through p50 whose log-spread is that of the interval on each side.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"service level must be in (0, 1), got {level}")
    lo, mid, hi = (np.log1p(np.maximum(np.asarray(x, dtype=np.float64), 0.0)) for x in (p10, p50, p90))
    z = NormalDist().inv_cdf(level)
    # Two half-spreads keep the skew the model gave: right and left tails differ.
    sigma = np.where(z >= 0, hi - mid, mid - lo) / Z90
    return np.maximum(np.expm1(mid + z * sigma), 0.0)


def days_of_cover(on_hand: np.ndarray, p50: np.ndarray, days: int) -> np.ndarray:
    """Days the stock on hand lasts at the median demand rate of ``p50`` units per ``days`` days (inf: no demand)."""
    rate = np.asarray(p50, dtype=np.float64) / days
    with np.errstate(divide="ignore"):
        return np.where(rate > 0, np.asarray(on_hand, dtype=np.float64) / rate, np.inf)


def reorder_quantity(
    on_hand: np.ndarray, p10: np.ndarray, p50: np.ndarray, p90: np.ndarray, service_level: float
) -> np.ndarray:
    """Units to order now so that lead-time demand is met with probability ``service_level`` (newsvendor).

    The critical fractile is the service level (underage cost / (underage +
    overage)); the order tops the stock up to that quantile of demand, and is
    never negative.
    """
    target = demand_quantile(p10, p50, p90, service_level)
    # Rounded first: expm1(log1p(28)) is 28.000000000000004, and a whole extra unit is no rounding error.
    return np.maximum(np.ceil(np.round(target - np.asarray(on_hand, dtype=np.float64), 6)), 0.0)


def lead_time_quantiles(quantiles: np.ndarray, horizons: tuple[int, ...], days: int) -> np.ndarray:
    """``(n, 3)`` p10/p50/p90 of units over ``days`` days, from ``(n, len(horizons), 3)`` horizon totals.

    Exact at a forecast horizon; between two horizons each quantile is
    interpolated linearly in days (quantiles of sums are not additive, so
    this is an approximation, good where demand is steady over the gap);
    below the first horizon it is scaled down from it. ``days`` beyond the
    last horizon are refused: nothing forecasts that far.
    """
    q = np.asarray(quantiles, dtype=np.float64)
    if not 1 <= days <= horizons[-1]:
        raise ValueError(f"lead time must be 1..{horizons[-1]} days, got {days}")
    if days in horizons:
        return q[:, horizons.index(days)]
    hi = next(i for i, h in enumerate(horizons) if h > days)
    if hi == 0:
        return q[:, 0] * (days / horizons[0])
    a, b = horizons[hi - 1], horizons[hi]
    w = (days - a) / (b - a)
    return (1 - w) * q[:, hi - 1] + w * q[:, hi]
