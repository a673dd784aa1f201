"""The forecaster contract: a batch of feature arrays in, forecast arrays out.

The worker only knows this interface, so the baseline and the neural model
are interchangeable without touching the agents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from schemas.records import HORIZONS, STAGES

__all__ = ["HORIZONS", "STAGES", "QUANTILES", "TEXT_DIM", "FeatureBatch", "ForecastBatch", "Forecaster",
           "nested_horizons"]

QUANTILES = (0.1, 0.5, 0.9)
TEXT_DIM = 384  # all-MiniLM-L6-v2 sentence embedding size


@dataclass(frozen=True)
class FeatureBatch:
    """Model input for ``n`` SKUs.

    ``history``: ``(n, 6, days)`` float32: clicks, cart adds, cart removes,
    units sold, revenue (currency units), order lines (order events, whatever
    their qty) per day, oldest first. ``days_since_first_sale``:
    ``(n,)`` days, -1 when the SKU never sold. ``as_of_weekday``: ``(n,)``
    weekday of the last day (0 = Monday). ``as_of_day``: the last day, days
    since 1970-01-01 UTC (calendar features such as day of year come from it).
    ``text``: ``(n, TEXT_DIM)`` float32 L2-normalised product-text embeddings,
    zero rows where ``has_text`` (``(n,)`` bool) is False: the SKU has no
    catalog record, and a model uses its learned "unknown" embedding there.
    """

    history: np.ndarray
    days_since_first_sale: np.ndarray
    as_of_weekday: np.ndarray
    spec_version: int
    as_of_day: int = 0
    text: np.ndarray | None = None
    has_text: np.ndarray | None = None

    def __len__(self) -> int:
        return self.history.shape[0]


@dataclass(frozen=True)
class ForecastBatch:
    """Forecasts for ``n`` SKUs.

    ``quantiles``: ``(n, len(HORIZONS), len(QUANTILES))`` units sold over the
    next 1, 7 and 14 days at p10, p50, p90, non-decreasing along the last axis.
    ``stage_probs``: ``(n, len(STAGES))``, rows sum to 1. ``fallback``:
    ``(n,)`` bool, the rows a stand-in forecaster answered for the model
    (None: every row is the forecaster's own), ``fallback_reason`` why
    (``"nan"``, ``"error"``, ``"not_loaded"``).
    """

    quantiles: np.ndarray
    stage_probs: np.ndarray
    fallback: np.ndarray | None = None
    fallback_reason: str | None = None


class Forecaster(Protocol):
    """Anything that turns features into forecasts."""

    name: str
    version: str

    def predict(self, features: FeatureBatch) -> ForecastBatch:
        """Forecast a batch of SKUs."""
        ...


def nested_horizons(quantiles: np.ndarray) -> np.ndarray:
    """``quantiles`` ``(n, H, Q)`` raised where a longer horizon's quantile is below a shorter one's.

    The horizons are nested totals (units over the next 1, 7 and 14 days),
    so each quantile of the 14-day total is at least the 7-day one's, which
    is at least the 1-day one's; separately calibrated horizons can break
    that (a 14-day p50 of 134 under a 7-day p50 of 142), and a consumer that
    subtracts them (units in days 8-14) would get a negative. Taking the
    running maximum over the horizons keeps p10 <= p50 <= p90 per horizon.

    >>> nested_horizons(np.array([[[5.0, 17.5, 23.8], [16.8, 142.5, 142.5], [0.0, 134.0, 134.0]]]))[0].tolist()
    [[5.0, 17.5, 23.8], [16.8, 142.5, 142.5], [16.8, 142.5, 142.5]]
    """
    return np.maximum.accumulate(np.asarray(quantiles), axis=1)

