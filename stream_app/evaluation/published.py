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


def launch_scores(by_day: dict[int, list[dict]], skus: list[str], units: np.ndarray, first_day: int, first: int,
                  last: int) -> dict[str, dict] | None:
    """Per horizon: the published forecasts made from launches (``cold_start``) against what their SKUs sold next.

    Every such forecast made from day ``first`` to ``last`` minus the
    longest horizon (so each outcome lies in the period), active ones only
    (a retirement's zeros are not a forecast of a launch). ``units``:
    ``(R, D)`` units sold per SKU of ``skus`` and day from ``first_day``; a
    SKU not among them had no event in the data, so sold nothing.
    Holding nothing instead scores a WAPE of 1 and a pinball Σρ/Σy of 0.5.
    None when there is none.
    """
    index = {s: i for i, s in enumerate(skus)}
    rows, days, quantiles = [], [], []
    for day in sorted(by_day):
        if not first <= day <= last - max(HORIZONS):
            continue
        for m in by_day[day]:
            if m.get("cold_start") and m["active"]:
                rows.append(index.get(m["sku"], -1))  # -1: no event in the data at all, so nothing sold
                days.append(day - first_day)
                quantiles.append([[m["horizons"][str(h)][p] for p in ("p10", "p50", "p90")] for h in HORIZONS])
    if not rows:
        return None
    cum = np.concatenate([np.zeros((units.shape[0], 1)), np.cumsum(units, axis=1, dtype=np.float64)], axis=1)
    cum = np.concatenate([cum, np.zeros((1, cum.shape[1]))])  # the row of the SKUs without events (-1)
    r, d, q = np.array(rows), np.array(days), np.array(quantiles, dtype=np.float64)
    levels = np.array(QUANTILES)
    out = {}
    for j, h in enumerate(HORIZONS):
        y = cum[r, d + 1 + h] - cum[r, d + 1]  # the days after the forecast day: d+1 .. d+h
        lo, mid, hi = q[:, j, 0], q[:, j, 1], q[:, j, 2]
        total = float(y.sum())
        gap = y[:, None] - q[:, j, :]
        rho = np.maximum(levels * gap, (levels - 1.0) * gap).mean(axis=1)
        out[str(h)] = {
            "forecasts": len(y), "units": total, "zero_share": float((y == 0).mean()),
            "wape": float(np.abs(y - mid).sum() / total) if total > 0 else None,
            "pinball_scaled": float(rho.sum() / total) if total > 0 else None,
            "coverage": float(((y >= lo) & (y <= hi)).mean()),
        }
    return out
