"""The offline panel: every SKU's daily history on one calendar, features at any origin day, targets after it.

Features go through :func:`models.features.build_features`, the function the
worker calls on its windows, so a model sees offline exactly what it sees
online. Pure: arrays in, arrays out; building a panel from files is
:mod:`stream_app.data.samples`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from models.features import build_features
from models.interface import HORIZONS, FeatureBatch
from models.layout import FUNNEL, HISTORY_DAYS, UNITS

__all__ = ["FUNNEL", "UNITS", "Panel", "panel_until", "history_at", "features_at", "targets_at"]


@dataclass(frozen=True)
class Panel:
    """Every SKU's daily series on one calendar.

    ``values``: ``(n_skus, 6, n_days)`` float32 clicks, cart adds, cart
    removes, units sold, revenue (currency units), order lines per UTC day
    (the worker's history channels); ``values[..., 0]`` is day
    ``first_day`` (days since 1970-01-01). ``first_sale_day``: ``(n_skus,)``
    day of each SKU's first sale, -1 for none. ``text``/``has_text``:
    product-text embeddings (zero rows where there is no catalog record).
    ``has_funnel``: the dataset has clicks or cart events at all.
    """

    values: np.ndarray
    skus: list[str]
    first_day: int
    first_sale_day: np.ndarray
    text: np.ndarray
    has_text: np.ndarray
    has_funnel: bool

    @property
    def last_day(self) -> int:
        """The panel's last day (days since 1970-01-01)."""
        return self.first_day + self.values.shape[2] - 1


def panel_until(panel: Panel, day: int) -> Panel:
    """The panel as known at the end of ``day`` (days since 1970-01-01): no later day, no later first sale.

    ``values`` ends at ``day`` (a view, no copy); a first sale after ``day``
    is not known yet (-1). A forecaster fitted on it cannot see the future.
    """
    keep = max(min(day - panel.first_day + 1, panel.values.shape[2]), 0)
    first = np.where(panel.first_sale_day <= day, panel.first_sale_day, -1)
    return replace(panel, values=panel.values[:, :, :keep], first_sale_day=first)


def history_at(panel: Panel, origin_day: int, history_days: int = HISTORY_DAYS, rows: np.ndarray | None = None) -> np.ndarray:
    """``(n, 6, history_days)`` float32 days ``origin_day - history_days + 1 .. origin_day``; zeros outside the panel."""
    values = panel.values if rows is None else panel.values[rows]
    n, channels, n_days = values.shape
    out = np.zeros((n, channels, history_days), dtype=np.float32)
    start = origin_day - history_days + 1 - panel.first_day  # panel index of out[..., 0]
    lo, hi = max(start, 0), min(start + history_days, n_days)
    if hi > lo:
        out[:, :, lo - start : hi - start] = values[:, :, lo:hi]
    return out


def features_at(panel: Panel, origin_day: int, history_days: int = HISTORY_DAYS, rows: np.ndarray | None = None) -> FeatureBatch:
    """Model input at the end of ``origin_day``, as the worker builds it from its windows.

    ``rows``: panel rows (SKUs) to include, all by default. A first sale
    after ``origin_day`` is not known yet (-1).
    """
    sel = slice(None) if rows is None else rows
    first = panel.first_sale_day[sel]
    first = np.where((first >= 0) & (first <= origin_day), first, -1)
    return build_features(history_at(panel, origin_day, history_days, rows), origin_day, first,
                          panel.text[sel], panel.has_text[sel])


def targets_at(panel: Panel, origin_day: int, rows: np.ndarray | None = None) -> np.ndarray:
    """``(n, 3)`` float32 units sold over days ``origin_day+1 .. origin_day+h`` for h in 1, 7, 14; NaN past the panel."""
    units = panel.values[:, UNITS] if rows is None else panel.values[rows, UNITS]
    out = np.full((units.shape[0], len(HORIZONS)), np.nan, dtype=np.float32)
    start = origin_day + 1 - panel.first_day
    for j, h in enumerate(HORIZONS):
        if start >= 0 and start + h <= units.shape[1]:
            out[:, j] = units[:, start : start + h].sum(axis=1)
    return out
