"""Model input from daily histories: one function for training, evaluation and the worker.

Pure: arrays in, arrays out. The worker calls :func:`build_features` on the
histories of its windows (``stream_app/core/features.py``), training and
evaluation on the offline panel (:func:`models.panel.features_at`), so what a
model sees online is what it was trained on
(tests/integration/test_feature_parity.py).
"""

from __future__ import annotations

import numpy as np

from models.interface import TEXT_DIM, FeatureBatch
from models.layout import CHANNELS, FEATURE_SPEC_VERSION


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
    first, ending at ``as_of_day`` (:data:`models.layout.CHANNELS`).
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
