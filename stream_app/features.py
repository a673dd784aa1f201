"""Model input from window state: one function for training and for the worker.

Pure: arrays in, arrays out. The worker and (later) the offline trainer both
call :func:`build_features`, so what a model sees online is what it was
trained on.
"""

from __future__ import annotations

import numpy as np

from models.interface import TEXT_DIM, FeatureBatch
from stream_app.windows import CHANNELS, SkuWindow, StateBatch, histories

# 2: histories carry order lines per day (channel 5) and the network reads them; 1 had 5 channels
FEATURE_SPEC_VERSION = 2


def build_features(
    history: np.ndarray,
    as_of_day: int,
    first_sale_day: np.ndarray,
    text: np.ndarray | None = None,
    has_text: np.ndarray | None = None,
) -> FeatureBatch:
    """Features for ``n`` SKUs at the end of day ``as_of_day`` (days since 1970-01-01 UTC).

    ``history``: ``(n, 6, days)`` daily clicks, cart adds, cart removes, units
    sold, revenue (currency units) and order lines (order events), oldest
    first, ending at ``as_of_day`` (:data:`stream_app.windows.CHANNELS`).
    ``first_sale_day``: ``(n,)`` day index of each SKU's first sale, or -1.
    ``text``/``has_text``: ``(n, TEXT_DIM)`` product-text embeddings and which
    rows are real; both omitted means no SKU has a catalog record.
    """
    history = np.asarray(history, dtype=np.float32)
    if history.ndim != 3 or history.shape[1] != len(CHANNELS):
        raise ValueError(f"history must have shape (n, {len(CHANNELS)}, days), got {history.shape}")
    first = np.asarray(first_sale_day, dtype=np.int64)
    age = np.where(first >= 0, as_of_day - first, -1).astype(np.float32)
    # 1970-01-01 was a Thursday: weekday 0 = Monday.
    weekday = (as_of_day + 3) % 7
    n = history.shape[0]
    if text is None:
        text = np.zeros((n, TEXT_DIM), dtype=np.float32)
        has_text = np.zeros(n, dtype=bool)
    else:
        text = np.asarray(text, dtype=np.float32)
        has_text = np.ones(n, dtype=bool) if has_text is None else np.asarray(has_text, dtype=bool)
        if text.shape != (n, TEXT_DIM) or has_text.shape != (n,):
            raise ValueError(f"text must have shape ({n}, {TEXT_DIM}) and has_text ({n},), "
                             f"got {text.shape} and {has_text.shape}")
    return FeatureBatch(
        history=history,
        days_since_first_sale=age,
        as_of_weekday=np.full(n, weekday, dtype=np.int64),
        spec_version=FEATURE_SPEC_VERSION,
        as_of_day=int(as_of_day),
        text=text,
        has_text=has_text,
    )


def features_from_batch(
    batch: StateBatch, as_of_day: int, text: np.ndarray | None = None, has_text: np.ndarray | None = None
) -> FeatureBatch:
    """Features of every SKU of a :class:`~stream_app.windows.StateBatch` (text as in :func:`build_features`)."""
    history, first_sale = batch.histories(as_of_day)
    return build_features(history, as_of_day, first_sale, text, has_text)


def features_from_windows(windows: list[SkuWindow], as_of_day: int) -> FeatureBatch:
    """Features of several SKUs (windows of one spec) in one vectorised gather."""
    if not windows:
        raise ValueError("no windows to build features from")
    history, first_sale = histories([w.buf for w in windows], windows[0].spec, as_of_day)
    return build_features(history, as_of_day, first_sale)
