"""Model input from window state: one function for training and for the worker.

Pure: arrays in, arrays out. The worker and (later) the offline trainer both
call :func:`build_features`, so what a model sees online is what it was
trained on.
"""

from __future__ import annotations

import numpy as np

from models.interface import FeatureBatch
from stream_app.windows import SkuWindow, StateBatch, histories

FEATURE_SPEC_VERSION = 1


def build_features(
    history: np.ndarray, as_of_day: int, first_sale_day: np.ndarray
) -> FeatureBatch:
    """Features for ``n`` SKUs at the end of day ``as_of_day`` (days since 1970-01-01 UTC).

    ``history``: ``(n, 5, days)`` daily clicks, cart adds, cart removes, units
    sold and revenue, oldest first, ending at ``as_of_day``.
    ``first_sale_day``: ``(n,)`` day index of each SKU's first sale, or -1.
    """
    history = np.asarray(history, dtype=np.float32)
    if history.ndim != 3 or history.shape[1] != 5:
        raise ValueError(f"history must have shape (n, 5, days), got {history.shape}")
    first = np.asarray(first_sale_day, dtype=np.int64)
    age = np.where(first >= 0, as_of_day - first, -1).astype(np.float32)
    # 1970-01-01 was a Thursday: weekday 0 = Monday.
    weekday = (as_of_day + 3) % 7
    return FeatureBatch(
        history=history,
        days_since_first_sale=age,
        as_of_weekday=np.full(history.shape[0], weekday, dtype=np.int64),
        spec_version=FEATURE_SPEC_VERSION,
    )


def features_from_batch(batch: StateBatch, as_of_day: int) -> FeatureBatch:
    """Features of every SKU of a :class:`~stream_app.windows.StateBatch`."""
    history, first_sale = batch.histories(as_of_day)
    return build_features(history, as_of_day, first_sale)


def features_from_windows(windows: list[SkuWindow], as_of_day: int) -> FeatureBatch:
    """Features of several SKUs (windows of one spec) in one vectorised gather."""
    if not windows:
        raise ValueError("no windows to build features from")
    history, first_sale = histories([w.buf for w in windows], windows[0].spec, as_of_day)
    return build_features(history, as_of_day, first_sale)
