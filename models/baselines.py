"""Baseline forecasters: simple, fast, and hard to embarrass."""

from __future__ import annotations

import numpy as np

from models.interface import HORIZONS, FeatureBatch, ForecastBatch
from models.layout import UNITS

Z90 = 1.2815515655446004  # standard normal quantile at 0.9


class EwmaForecaster:
    """Exponentially weighted mean of daily units, with a normal interval.

    The daily mean ``mu`` and variance ``var`` are exponentially weighted
    over the history (``alpha`` per day). The forecast over ``h`` days is
    ``mu * h`` with standard deviation ``sqrt(h * max(var, mu))`` (at least
    Poisson noise), clipped at zero. The stage comes from the sign of the
    recent trend: units over the last 7 days against the 21 before them,
    and "introduction" for SKUs whose first sale is under 14 days old.

    Examples
    --------
    >>> import numpy as np
    >>> from models.features import build_features
    >>> hist = np.zeros((1, 6, 28)); hist[0, 3] = 2.0
    >>> fb = EwmaForecaster().predict(build_features(hist, 20_000, np.array([19_900])))
    >>> [round(float(x), 1) for x in fb.quantiles[0, 1]]   # 7 days: p10, p50, p90
    [9.2, 14.0, 18.8]
    >>> int(fb.stage_probs[0].argmax())   # flat sales, long since launch: maturity
    2
    """

    name = "baseline-ewma"
    version = "1"

    def __init__(self, alpha: float = 0.15) -> None:
        self.alpha = alpha

    def predict(self, features: FeatureBatch) -> ForecastBatch:
        """Forecast units over :data:`HORIZONS` and stage probabilities for each SKU."""
        units = features.history[:, UNITS, :].astype(np.float64)
        n, days = units.shape
        w = (1 - self.alpha) ** np.arange(days - 1, -1, -1, dtype=np.float64)
        w /= w.sum()
        mu = units @ w
        var = ((units - mu[:, None]) ** 2) @ w
        h = np.asarray(HORIZONS, dtype=np.float64)
        mean = mu[:, None] * h[None, :]
        sd = np.sqrt(h[None, :] * np.maximum(var, mu)[:, None])
        q = np.stack([np.maximum(mean - Z90 * sd, 0.0), mean, mean + Z90 * sd], axis=-1)
        return ForecastBatch(quantiles=q.astype(np.float32), stage_probs=self._stages(units, features))

    @staticmethod
    def _stages(units: np.ndarray, features: FeatureBatch) -> np.ndarray:
        recent = units[:, -7:].sum(axis=1) / 7.0
        before = units[:, -28:-7].sum(axis=1) / 21.0
        log_ratio = np.log((recent + 0.1) / (before + 0.1))
        age = features.days_since_first_sale
        young = (age >= 0) & (age < 14)
        never = age < 0
        scores = np.stack(
            [
                np.where(young | never, 3.0, -3.0),
                4.0 * log_ratio,
                1.0 - 4.0 * np.abs(log_ratio),
                -4.0 * log_ratio,
            ],
            axis=1,
        )
        scores -= scores.max(axis=1, keepdims=True)
        p = np.exp(scores)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def build_forecaster(name: str) -> EwmaForecaster:
    """The forecaster registered under ``name`` (only ``"baseline"`` for now)."""
    if name == "baseline":
        return EwmaForecaster()
    raise ValueError(f"unknown forecaster {name!r}; choose 'baseline'")
