"""What consumers hold: the worker's published stream, replayed offline, scored at the backtest's origins.

A consumer of ``forecasts`` keeps the newest message per SKU. At each origin
(the end of a day) that is the forecast of the newest closed day on or
before it, calibrated as published, or nothing at all for a SKU the worker
never forecast; it is scored against the units sold over the days after
the origin, like every forecaster of the backtest, so the published stream
sits in the same tables as the model at the origins and the anchors. The
forecast's age (origin minus its day) is kept: a stale forecast is scored
as it is, as a planner would use it.
"""

from __future__ import annotations

import numpy as np

from models.interface import HORIZONS, QUANTILES

AGE_BUCKETS = ((0, 0, "0"), (1, 3, "1-3"), (4, 7, "4-7"), (8, 14, "8-14"), (15, 28, "15-28"), (29, 10**9, ">28"))
NONE = -1  # age of "no forecast held"


def held(by_day: dict[int, list[dict]], skus: list[str], origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The forecasts held at each origin: ``(O, R, len(HORIZONS), 3)`` quantiles (units) and ``(O, R)`` ages (days).

    ``by_day``: the published forecast messages by the day they were made
    (their ``as_of`` is that day's end); ``skus``: the rows to score. A SKU
    with no forecast yet holds nothing: quantiles 0, age :data:`NONE`.
    """
    index = {s: i for i, s in enumerate(skus)}
    quantiles = np.zeros((len(origins), len(skus), len(HORIZONS), len(QUANTILES)))
    ages = np.full((len(origins), len(skus)), NONE, dtype=np.int64)
    latest: dict[int, tuple[int, list]] = {}
    days = sorted(by_day)
    j = 0
    keys = [str(h) for h in HORIZONS]
    for i, origin in enumerate(np.asarray(origins).tolist()):
        while j < len(days) and days[j] <= origin:
            for m in by_day[days[j]]:
                row = index.get(m["sku"])
                if row is not None:
                    hz = m["horizons"]
                    latest[row] = (days[j], [[hz[k]["p10"], hz[k]["p50"], hz[k]["p90"]] for k in keys])
            j += 1
        for row, (day, q) in latest.items():
            quantiles[i, row] = q
            ages[i, row] = origin - day
    return quantiles, ages


def by_age(quantiles: np.ndarray, ages: np.ndarray, targets: np.ndarray, horizon: int) -> list[dict]:
    """WAPE and p10–p90 coverage of the held forecasts at ``horizon`` days, per age bucket (and "none held").

    ``targets`` ``(O, R, len(HORIZONS))`` units sold after each origin (NaN
    past the data: left out).
    """
    h = HORIZONS.index(horizon)
    y, q = targets[:, :, h], quantiles[:, :, h]
    ok = np.isfinite(y)
    out = []
    for lo, hi, name in (*AGE_BUCKETS, (NONE, NONE, "none held")):
        sel = ok & (ages >= lo) & (ages <= hi)
        n = int(sel.sum())
        units = float(y[sel].sum())
        out.append({
            "age_days": name, "pairs": n, "units": units,
            "wape": float(np.abs(y[sel] - q[..., 1][sel]).sum() / units) if units > 0 else None,
            "coverage": float(((y[sel] >= q[..., 0][sel]) & (y[sel] <= q[..., 2][sel])).mean()) if n else None,
        })
    return out


def every_sku_held(quantiles: np.ndarray, ages: np.ndarray, targets: np.ndarray) -> dict[str, dict]:
    """Per horizon: WAPE, p10–p90 coverage and width of the forecasts every SKU's consumer holds.

    The backtest scores the SKUs that sold something over the period; a
    consumer also holds forecasts (mostly zeros and intervals from 0) for
    SKUs that go on to sell nothing, and the calibration learns from those
    too. ``quantiles`` ``(O, N, H, 3)`` and ``ages`` ``(O, N)`` from
    :func:`held` over every SKU, ``targets`` ``(O, N, H)`` units (NaN past
    the data); pairs with no forecast held are left out.
    """
    out = {}
    for j, h in enumerate(HORIZONS):
        y, q = targets[:, :, j], quantiles[:, :, j]
        sel = (ages != NONE) & np.isfinite(y)
        y, lo, mid, hi = y[sel], q[..., 0][sel], q[..., 1][sel], q[..., 2][sel]
        units = float(y.sum())
        out[str(h)] = {
            "pairs": int(sel.sum()),
            "zero_share": float((y == 0).mean()) if sel.any() else None,
            "wape": float(np.abs(y - mid).sum() / units) if units > 0 else None,
            "coverage": float(((y >= lo) & (y <= hi)).mean()) if sel.any() else None,
            "width": float((hi - lo).sum() / units) if units > 0 else None,
        }
    return out
