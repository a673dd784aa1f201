"""The worker's model input: features of a batch of SKU window states, through :func:`models.features.build_features`."""

from __future__ import annotations

import numpy as np

from models.features import build_features
from models.interface import FeatureBatch
from stream_app.core.windows import StateBatch


def features_from_batch(
    batch: StateBatch, as_of_day: int, text: np.ndarray | None = None, has_text: np.ndarray | None = None
) -> FeatureBatch:
    """Features of every SKU of a :class:`~stream_app.core.windows.StateBatch` (text as in :func:`build_features`)."""
    history, first_sale = batch.histories(as_of_day)
    return build_features(history, as_of_day, first_sale, text, has_text)
