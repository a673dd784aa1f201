"""The strong anchors of the backtest, and every baseline of ``trendcast evaluate --baselines`` by its key.

Anchors are what a practitioner would run instead of the model
(docs: the quality bars): empirical quantiles of the last weeks' totals
(:class:`WeeklyQuantiles`, a fixed rule on the 56-day features) and a
global LightGBM model retrained at every origin
(:class:`~stream_app.evaluation.gbm.LightGbmQuantiles`, fitted on the panel
up to the origin). Neither predicts a stage: ``stage_probs`` is uniform.
"""

from __future__ import annotations

import numpy as np

from models.baselines import UNITS
from models.interface import HORIZONS, QUANTILES, STAGES, FeatureBatch, ForecastBatch
from stream_app.evaluation.gbm import LightGbmQuantiles
from stream_app.evaluation.reference import reference_forecasters

WEEK = 7


class WeeklyQuantiles:
    """p10/p50/p90 of the SKU's last ``weeks`` weekly totals: a fixed rule, nothing fitted or tuned.

    * 7 days: the quantiles of the ``weeks`` non-overlapping 7-day totals
      ending at the origin (the newest week ends on the origin day);
    * 14 days: the quantiles of the sums of consecutive pairs of those weeks
      (``weeks − 1`` overlapping fortnights, each ending on a week boundary);
    * 1 day: the 7-day quantiles / 7 (a day is an average seventh of a week;
      this ignores the weekday, so a shop closed one day a week gets a
      positive forecast for it).

    Quantiles interpolate linearly between order statistics (numpy's
    default), so with 8 weeks p10 lies 0.7 of the way from the smallest
    week to the second smallest.

    Examples
    --------
    >>> from models.features import build_features
    >>> hist = np.zeros((1, 6, 56)); hist[0, 3] = np.repeat([0, 1, 2, 3, 4, 5, 6, 7], 7)  # weeks 0, 7, ..., 49
    >>> q = WeeklyQuantiles().predict(build_features(hist, 20_000, np.array([19_900]))).quantiles[0]
    >>> q.astype(float).round(2).tolist()  # 1, 7, 14 days: p10, p50, p90
    [[0.7, 3.5, 6.3], [4.9, 24.5, 44.1], [15.4, 49.0, 82.6]]
    """

    name = "weekly-quantiles-8"
    version = "1"
    predicts_stages = False

    def __init__(self, weeks: int = 8) -> None:
        self.weeks = weeks

    def predict(self, features: FeatureBatch) -> ForecastBatch:
        """p10/p50/p90 of units over :data:`HORIZONS`; uniform stage probabilities."""
        days = self.weeks * WEEK
        units = features.history[:, UNITS, :].astype(np.float64)
        if units.shape[1] < days:
            raise ValueError(f"{self.name} reads {days} days of history, got {units.shape[1]}")
        n = len(units)
        weeks = units[:, -days:].reshape(n, self.weeks, WEEK).sum(axis=2)
        fortnights = weeks[:, 1:] + weeks[:, :-1]
        q7 = np.quantile(weeks, QUANTILES, axis=1).T
        by_horizon = {1: q7 / WEEK, 7: q7, 14: np.quantile(fortnights, QUANTILES, axis=1).T}
        q = np.stack([by_horizon[h] for h in HORIZONS], axis=1)
        stages = np.full((n, len(STAGES)), 1.0 / len(STAGES), dtype=np.float32)
        return ForecastBatch(quantiles=q.astype(np.float32), stage_probs=stages)


def baseline_forecasters() -> dict[str, object]:
    """Every baseline by its ``--baselines`` key: the reference forecasters, then the two anchors.

    Building them imports nothing heavy: LightGBM is imported when the
    anchor is first fitted.
    """
    return {**reference_forecasters(), "weekly-quantiles": WeeklyQuantiles(), "lightgbm": LightGbmQuantiles()}
