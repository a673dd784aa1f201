"""Lag features of the LightGBM anchor: one row per SKU at the end of a day, from the worker's features.

The table is computed from a :class:`~models.interface.FeatureBatch` (the
56-day history the worker holds, age and weekday), for training days and
for the origin alike, so the anchor learns on exactly what it predicts
from. Orders per day are not in the windows, so there is no order count.
"""

from __future__ import annotations

import numpy as np

from models.baselines import UNITS
from models.interface import FeatureBatch

REVENUE = 4  # channel of revenue (currency units) in FeatureBatch.history
WINDOW = 56  # days the features read: 8 weeks
LAGS = 7  # daily units of the last 7 days, one column each
WEEKS = WINDOW // 7
PRICE_DAYS = 28

NAMES = (
    *(f"units_lag_{k}" for k in range(1, LAGS + 1)),  # lag 1 = the origin day itself
    *(f"week_{k}" for k in range(1, WEEKS + 1)),  # week 1 = the 7 days ending at the origin
    "mean_7", "mean_28", "mean_56",  # units per day
    "zero_share_28",  # share of the last 28 days without a unit sold
    "days_since_first_sale", "days_since_last_sale",  # NaN: never / not in the 56 days
    "weekday",  # of the origin, 0 = Monday
    "price_28",  # revenue / units over the last 28 days; NaN without a sale
)


def feature_table(features: FeatureBatch) -> np.ndarray:
    """``(n, len(NAMES))`` float32 features of each SKU; NaN where a feature is undefined (LightGBM's missing).

    Examples
    --------
    >>> from models.features import build_features
    >>> hist = np.zeros((1, 6, 56)); hist[0, 3, -3] = 4.0; hist[0, 4, -3] = 10.0
    >>> row = dict(zip(NAMES, feature_table(build_features(hist, 20_000, np.array([19_990])))[0].tolist()))
    >>> row["units_lag_3"], row["week_1"], row["days_since_last_sale"], row["price_28"], row["weekday"]
    (4.0, 4.0, 2.0, 2.5, 4.0)
    """
    hist = features.history
    if hist.shape[2] < WINDOW:
        raise ValueError(f"the LightGBM anchor reads {WINDOW} days of history, got {hist.shape[2]}")
    units = hist[:, UNITS, -WINDOW:].astype(np.float64)
    revenue = hist[:, REVENUE, -WINDOW:].astype(np.float64)
    n = len(units)
    newest_first = units[:, ::-1]
    weeks = newest_first.reshape(n, WEEKS, 7).sum(axis=2)
    sold = newest_first > 0
    since_last = np.where(sold.any(axis=1), sold.argmax(axis=1), np.nan)
    age = np.where(features.days_since_first_sale >= 0, features.days_since_first_sale, np.nan)
    units_p, revenue_p = units[:, -PRICE_DAYS:].sum(axis=1), revenue[:, -PRICE_DAYS:].sum(axis=1)
    price = np.divide(revenue_p, units_p, out=np.full(n, np.nan), where=units_p > 0)
    columns = [
        newest_first[:, :LAGS], weeks,
        *(units[:, -d:].mean(axis=1, keepdims=True) for d in (7, 28, 56)),
        (units[:, -28:] == 0).mean(axis=1, keepdims=True),
        age[:, None], since_last[:, None],
        features.as_of_weekday[:, None].astype(np.float64),
        price[:, None],
    ]
    return np.concatenate(columns, axis=1).astype(np.float32)
