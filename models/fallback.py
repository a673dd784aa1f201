"""Model forecasts with a safety net: rows the model cannot give come from the baseline.

The worker wraps its forecaster in :class:`GuardedForecaster`. The batch
``predict`` returns says which rows came from the fallback
(``ForecastBatch.fallback``) and why (``fallback_reason``: ``"nan"``, the
model returned a non-finite row; ``"error"``, the model raised;
``"not_loaded"``, no model); nothing is left on the forecaster between
calls. The worker names the forecaster of each row in the forecast's
``model`` field (:meth:`GuardedForecaster.model_fields`) and counts the
fallen-back rows by reason.
"""

from __future__ import annotations

import logging

import numpy as np

from models.interface import FeatureBatch, ForecastBatch, Forecaster

log = logging.getLogger(__name__)


class GuardedForecaster:
    """A primary forecaster (or None, when it did not load) backed by a fallback, row by row.

    Parameters
    ----------
    primary
        The model; None when it could not be loaded (``load_error`` says why).
    fallback
        The baseline that answers for rows the primary cannot.
    load_error
        One line: why the primary is None; logged once.
    """

    def __init__(self, primary: Forecaster | None, fallback: Forecaster, load_error: str | None = None) -> None:
        self.primary = primary
        self.fallback = fallback
        self.load_error = load_error
        self.name = primary.name if primary is not None else fallback.name
        self.version = primary.version if primary is not None else fallback.version
        self._primary_field = {"name": self.name, "version": self.version}
        if primary is None:
            log.warning("forecasting with %s only: %s", fallback.name, load_error or "no model")

    def predict(self, features: FeatureBatch) -> ForecastBatch:
        """The primary's forecasts, with the fallback's in every row the primary could not give."""
        n = len(features)
        if self.primary is None:
            return self._all_fallback(features, "not_loaded")
        try:
            out = self.primary.predict(features)
        except Exception:  # any model failure must not stop forecasting; logged and counted
            log.exception("%s failed on a batch of %d SKUs; using %s", self.primary.name, n, self.fallback.name)
            return self._all_fallback(features, "error")
        bad = ~(np.isfinite(out.quantiles).all(axis=(1, 2)) & np.isfinite(out.stage_probs).all(axis=1))
        if not bad.any():
            return ForecastBatch(out.quantiles, out.stage_probs, fallback=bad)
        rows = np.flatnonzero(bad)
        sub = self.fallback.predict(_rows(features, rows))
        quantiles, stage_probs = out.quantiles.copy(), out.stage_probs.copy()
        quantiles[rows], stage_probs[rows] = sub.quantiles, sub.stage_probs
        return ForecastBatch(quantiles, stage_probs, fallback=bad, fallback_reason="nan")

    def model_fields(self, batch: ForecastBatch) -> list[dict]:
        """Per row of ``batch`` (from :meth:`predict`), the forecast's ``model`` field.

        The primary's name and version, or the fallback's with
        ``fallback_reason``. Rows share their dicts: messages are serialised
        at once, and a batch has at most two distinct fields.
        """
        n = len(batch.quantiles)
        if batch.fallback is None or not batch.fallback.any():
            return [self._primary_field] * n
        standby = {"name": self.fallback.name, "version": self.fallback.version,
                   "fallback_reason": batch.fallback_reason}
        return [standby if bad else self._primary_field for bad in batch.fallback.tolist()]

    def _all_fallback(self, features: FeatureBatch, reason: str) -> ForecastBatch:
        out = self.fallback.predict(features)
        return ForecastBatch(out.quantiles, out.stage_probs, fallback=np.ones(len(features), dtype=bool),
                             fallback_reason=reason)


def _rows(features: FeatureBatch, rows: np.ndarray) -> FeatureBatch:
    """The sub-batch of ``rows``."""
    pick = lambda a: None if a is None else a[rows]  # noqa: E731
    return FeatureBatch(history=features.history[rows], days_since_first_sale=features.days_since_first_sale[rows],
                        as_of_weekday=features.as_of_weekday[rows], spec_version=features.spec_version,
                        as_of_day=features.as_of_day, text=pick(features.text), has_text=pick(features.has_text))
