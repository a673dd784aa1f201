"""Forecast and stage scores: plain arrays in, floats out.

Every function scores a set of (SKU, origin) pairs of one horizon; pairs
with a NaN target (past the end of the data) are left out by the caller.
Units are units sold over the horizon unless a docstring says otherwise.
"""

from __future__ import annotations

import numpy as np

from models.interface import QUANTILES

SEASON = 7  # days: the seasonal-naive lag of the MASE scale


def wape(y: np.ndarray, p50: np.ndarray) -> float:
    """Weighted absolute percentage error ``Σ|y − p50| / Σy`` (a fraction; NaN when ``Σy = 0``).

    Examples
    --------
    >>> wape(np.array([2.0, 0.0, 2.0]), np.array([1.0, 1.0, 2.0]))
    0.5
    """
    total = float(np.sum(y))
    return float(np.sum(np.abs(y - p50)) / total) if total > 0 else float("nan")


def naive_scale(units: np.ndarray, season: int = SEASON) -> np.ndarray:
    """Per row of ``units`` ``(n, days)``, the in-sample MAE of the seasonal naive forecast, per day.

    ``mean |y_t − y_{t−season}|`` over the history: the MASE denominator
    (Hyndman & Koehler 2006) with a weekly season. 0 for a constant history.
    """
    units = np.asarray(units, dtype=np.float64)
    if units.shape[1] <= season:
        raise ValueError(f"the history needs more than {season} days, got {units.shape[1]}")
    return np.abs(units[:, season:] - units[:, :-season]).mean(axis=1)


def mase(y: np.ndarray, p50: np.ndarray, scale: np.ndarray, horizon: int) -> tuple[float, int]:
    """Mean absolute scaled error over pairs, and how many pairs were left out.

    Each pair's error over ``horizon`` days is divided by ``horizon × scale``
    (``scale`` from :func:`naive_scale`: the naive method's error per day);
    pairs whose scale is 0 (a history without two different values a week
    apart, e.g. no sales at all) have no finite MASE and are left out.
    """
    ok = scale > 0
    if not ok.any():
        return float("nan"), int((~ok).sum())
    return float(np.mean(np.abs(y[ok] - p50[ok]) / (horizon * scale[ok]))), int((~ok).sum())


def pinball(y: np.ndarray, q: np.ndarray, levels: tuple[float, ...] = QUANTILES) -> np.ndarray:
    """Pinball loss of quantile forecasts ``q`` ``(n, len(levels))`` per pair and level, ``(n, len(levels))`` units.

    ``ρ_τ(u) = max(τu, (τ − 1)u)`` with ``u = y − q_τ``.

    Examples
    --------
    >>> pinball(np.array([10.0]), np.array([[4.0, 10.0, 12.0]])).round(2).tolist()
    [[0.6, 0.0, 0.2]]
    """
    tau = np.asarray(levels, dtype=np.float64)[None, :]
    u = np.asarray(y, dtype=np.float64)[:, None] - q
    return np.maximum(tau * u, (tau - 1.0) * u) + 0.0  # + 0.0: no -0.0 where q = y


def coverage(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Share of pairs with ``lo ≤ y ≤ hi`` (ties count as covered: units are integers)."""
    return float(np.mean((y >= lo) & (y <= hi))) if len(y) else float("nan")


def relative_width(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Mean width of the intervals relative to the units sold: ``Σ(hi − lo) / Σy`` (NaN when ``Σy = 0``).

    The price of coverage: an interval can cover everything by being wide.

    Examples
    --------
    >>> relative_width(np.array([4.0, 0.0]), np.array([1.0, 0.0]), np.array([5.0, 2.0]))
    1.5
    """
    total = float(np.sum(y))
    return float(np.sum(hi - lo) / total) if total > 0 else float("nan")


def macro_f1(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> tuple[float, list[float]]:
    """Macro-averaged F1 over the classes present in ``truth`` or ``predicted``, and F1 per class.

    Per class ``F1 = 2TP / (2TP + FP + FN)``; a class neither true nor
    predicted anywhere gets NaN and is left out of the mean.
    """
    per = []
    for c in range(n_classes):
        tp = np.sum((truth == c) & (predicted == c))
        fp = np.sum((truth != c) & (predicted == c))
        fn = np.sum((truth == c) & (predicted != c))
        denom = 2 * tp + fp + fn
        per.append(float(2 * tp / denom) if denom else float("nan"))
    present = [f for f in per if not np.isnan(f)]
    return (float(np.mean(present)) if present else float("nan")), per
