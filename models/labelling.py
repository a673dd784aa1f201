"""Lifecycle-stage labels for data without a truth: the simulator's stage rule, read off the smoothed sales curve.

The simulator labels stages from its Bass curve (docs/DATA.md): introduction
until the rate's first inflection point (sales accelerate fastest), growth
until the peak, maturity until the second inflection point (sales fall
fastest), decline after it. Real data has no curve to read, so the rule
reads the same three points off the observed daily units smoothed with a
Gaussian kernel:

The kernel's width follows the SKU's lifecycle: ``sigma = 0.6 ×`` the
sales-weighted standard deviation of its sale days, clipped to 3..28 days
(a slow mover's sparse sales need more smoothing than a fast seller's).

* ``T*``: the day the smoothed curve peaks (from the first sale on);
* ``T1``: the day of its steepest rise before ``T*``;
* ``T2``: the day of its steepest fall after ``T*`` (none when the curve
  never falls, e.g. when the data ends while it still grows).

Stages only move forward, and days before the first sale are -1
(undefined). The rule looks at the whole curve, past and future of each
day: it makes training labels, it cannot run in the stream. Labels of
training samples must come from a curve cut at the end of the training
period (:func:`stage_labels` on the truncated units), or they leak.
"""

from __future__ import annotations

import numpy as np

SPREAD_SHARE = 0.6  # kernel sigma per day of lifecycle spread (best agreement with the simulator's truth)
MIN_SIGMA, MAX_SIGMA = 3.0, 28.0  # days: at least the weekly pattern, at most a month
INTRODUCTION, GROWTH, MATURITY, DECLINE = range(4)


def smooth(units: np.ndarray, sigma: float) -> np.ndarray:
    """``(n, days)`` daily units smoothed along days by a Gaussian of ``sigma`` days, renormalised at the edges."""
    units = np.asarray(units, dtype=np.float64)
    radius = int(np.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    days = units.shape[-1]
    padded = np.pad(units, ((0, 0), (radius, radius)))
    inside = np.pad(np.ones(days), (radius, radius))
    num = np.stack([np.convolve(row, kernel, mode="valid") for row in padded]) if len(units) else units
    den = np.convolve(inside, kernel, mode="valid")
    return num / den


def lifecycle_sigma(units: np.ndarray) -> np.ndarray:
    """``(n,)`` smoothing sigma in days per SKU: :data:`SPREAD_SHARE` × the spread of its sale days, clipped."""
    t = np.arange(units.shape[1])
    total = units.sum(axis=1) + 1e-12
    mean = (units * t).sum(axis=1) / total
    spread = np.sqrt((units * (t - mean[:, None]) ** 2).sum(axis=1) / total)
    return np.clip(SPREAD_SHARE * spread, MIN_SIGMA, MAX_SIGMA)


def stage_labels(units: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """``(n, days)`` stage index per SKU and day (0 introduction .. 3 decline; -1 before the first sale).

    ``units``: ``(n, days)`` units sold per day, consecutive days. ``sigma``:
    the smoothing kernel in days, by default per SKU (:func:`lifecycle_sigma`).
    The rule is in the module docstring.
    """
    units = np.atleast_2d(np.asarray(units, dtype=np.float64))
    n, days = units.shape
    out = np.full((n, days), -1, dtype=np.int64)
    if days == 0:
        return out
    sigmas = lifecycle_sigma(units) if sigma is None else np.full(n, float(sigma))
    t = np.arange(days)
    for i in range(n):
        sold = np.flatnonzero(units[i] > 0)
        if len(sold) == 0:
            continue
        curve = smooth(units[i : i + 1], float(sigmas[i]))[0]
        slope = np.gradient(curve) if days > 1 else np.zeros_like(curve)
        first = sold[0]
        peak = first + int(np.argmax(curve[first:]))
        if peak == days - 1:  # still rising when the data ends: no peak yet
            peak = days
        t1 = first + int(np.argmax(slope[first : peak + 1])) if peak > first else first
        after = slope[peak:]
        t2 = peak + int(np.argmin(after)) if len(after) and after.min() < 0 else days
        stage = np.select([t < t1, t < peak, t < t2], [INTRODUCTION, GROWTH, MATURITY], DECLINE)
        out[i, first:] = stage[first:]
    return out
