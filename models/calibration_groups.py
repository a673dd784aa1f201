"""Calibration groups for SKUs whose catalog gives no category: bands of their recent sales level.

Calibration and drift detection run per group (:mod:`models.calibration`).
A shop whose catalog has no category (the UCI file, or SKUs whose catalog
record has not arrived yet) would put every SKU of a partition in one
group, and one drift detection would restart the bias correction of all of
them. Sales level is the grouping that needs nothing but the windows and
that the errors depend on: a SKU selling 0.1 a day and one selling 50 a
day are over- and under-forecast in different ways (intermittency against
level shifts), and a shift in the shop's demand shows in each band in its
own way. The bands are fixed (not learned) so a SKU's group depends only on
its own last 28 days, the same in every worker and on every replay.
"""

from __future__ import annotations

import numpy as np

UNKNOWN = "unknown"
# Units sold per day, mean over the last 28 days. Edges near the quartiles of the selling SKUs' levels in
# the UCI file at weekly ends from April to June 2011 (0.21, 1.07, 4.4 a day; 90 %: 12.6) rounded, plus a
# band for SKUs that sold nothing in the 28 days (the ones still clicked or going quiet).
LEVEL_EDGES = (0.25, 1.0, 4.0, 16.0)
LEVEL_NAMES = ("none", "<0.25/d", "0.25-1/d", "1-4/d", "4-16/d", ">=16/d")
# One string object per group name, shared by every SKU in it: a partition keeps each SKU's group for
# every forecast still waiting for its outcome (14 days of them), and a string built per SKU cost
# ~60 bytes each time.
UNKNOWN_GROUPS = np.asarray([f"{UNKNOWN}:{b}" for b in LEVEL_NAMES], dtype=object)


def level_bands(units_per_day: np.ndarray) -> np.ndarray:
    """``(n,)`` index into :data:`LEVEL_NAMES` of each SKU's sales level (units per day over the last 28 days)."""
    level = np.asarray(units_per_day, dtype=np.float64)
    return np.where(level > 0, 1 + np.searchsorted(LEVEL_EDGES, level, side="right"), 0)


def level_names(units_per_day: np.ndarray) -> np.ndarray:
    """``(n,)`` band name of each SKU's sales level (units per day over the last 28 days)."""
    return np.asarray(LEVEL_NAMES, dtype=object)[level_bands(units_per_day)]


def calibration_groups(categories: np.ndarray, units_per_day: np.ndarray) -> np.ndarray:
    """``(n,)`` calibration group of each SKU: its category, or ``unknown:<band>`` when it has none.

    ``categories``: ``(n,)`` catalog categories, :data:`UNKNOWN` (or empty)
    where the catalog has none; ``units_per_day``: ``(n,)`` mean units sold
    per day over the last 28 days.

    >>> calibration_groups(["toys", "unknown", ""], [0.0, 0.5, 30.0]).tolist()
    ['toys', 'unknown:0.25-1/d', 'unknown:>=16/d']
    """
    cats = np.asarray(categories, dtype=object)
    unknown = (cats == UNKNOWN) | (cats == "")
    out = cats.copy()
    if unknown.any():
        out[unknown] = UNKNOWN_GROUPS[level_bands(np.asarray(units_per_day)[unknown])]
    return out
