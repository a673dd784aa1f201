"""Reference forecasters for the backtest, behind the same :class:`~models.interface.Forecaster` contract.

Each one reads only the daily units of the :class:`FeatureBatch` it is
given (the 56-day history up to the origin), so it can see nothing the
model does not. Their point forecast of the total over ``h`` days is the
p50. None of them has an interval for an ``h``-day total, so all get the
same one (:func:`relative_spread`): the p50 times the relative spread of
the history's own rolling ``h``-day totals. They predict no stage:
``predicts_stages`` is False and ``stage_probs`` is uniform.

Parameters that are not fitted (moving-average window, TSB and
Holt-Winters smoothing) are fixed here, chosen once before any
evaluation and never tuned on a test period.
"""

from __future__ import annotations

import numpy as np

from models.baselines import UNITS, EwmaForecaster
from models.interface import HORIZONS, QUANTILES, STAGES, FeatureBatch, ForecastBatch

MAX_H = max(HORIZONS)
WEEK = 7


def relative_spread(units: np.ndarray, p50: np.ndarray) -> np.ndarray:
    """``(n, len(HORIZONS), 3)`` p10/p50/p90 around the point totals ``p50`` ``(n, len(HORIZONS))``.

    For horizon ``h``, ``S`` are the history's rolling ``h``-day totals of
    units: ``p_τ = p50 · Q_τ(S) / mean(S)``, then clipped so that
    ``p10 ≤ p50 ≤ p90``. Scale-free, never negative, and wide for
    intermittent histories (most ``h``-day totals zero, a few large). A
    history without sales gives the point forecast for all three.
    """
    n, days = units.shape
    csum = np.concatenate([np.zeros((n, 1)), np.cumsum(units, axis=1)], axis=1)
    out = np.empty((n, len(HORIZONS), len(QUANTILES)))
    for j, h in enumerate(HORIZONS):
        totals = csum[:, h:] - csum[:, :-h]
        mean = totals.mean(axis=1)
        q = np.quantile(totals, [QUANTILES[0], QUANTILES[-1]], axis=1).T
        ratio = np.divide(q, mean[:, None], out=np.ones_like(q), where=mean[:, None] > 0)
        point = p50[:, j]
        out[:, j, 0] = np.minimum(point * ratio[:, 0], point)
        out[:, j, 1] = point
        out[:, j, 2] = np.maximum(point * ratio[:, 1], point)
    return out


def horizon_totals(daily: np.ndarray) -> np.ndarray:
    """``(n, MAX_H)`` daily point forecasts → ``(n, len(HORIZONS))`` totals over the first ``h`` days."""
    csum = np.cumsum(daily, axis=1)
    return csum[:, [h - 1 for h in HORIZONS]]


class _Reference:
    """Shared shape: daily forecasts from the units history, totals per horizon, the shared interval."""

    name = "reference"
    version = "1"
    predicts_stages = False

    def daily(self, units: np.ndarray) -> np.ndarray:
        """``(n, MAX_H)`` daily point forecasts (units per day) from ``units`` ``(n, days)``."""
        raise NotImplementedError

    def predict(self, features: FeatureBatch) -> ForecastBatch:
        """p10/p50/p90 of units over :data:`HORIZONS`; uniform stage probabilities."""
        units = features.history[:, UNITS, :].astype(np.float64)
        p50 = horizon_totals(np.maximum(self.daily(units), 0.0))
        q = relative_spread(units, p50)
        stages = np.full((len(units), len(STAGES)), 1.0 / len(STAGES), dtype=np.float32)
        return ForecastBatch(quantiles=q.astype(np.float32), stage_probs=stages)


class SeasonalNaive7(_Reference):
    """Each of the next days sells what the same weekday sold in the last week."""

    name = "seasonal-naive-7"

    def daily(self, units: np.ndarray) -> np.ndarray:
        last_week = units[:, -WEEK:]
        return np.tile(last_week, (1, -(-MAX_H // WEEK)))[:, :MAX_H]


class MovingAverage(_Reference):
    """Each of the next days sells the mean of the last ``window`` days."""

    def __init__(self, window: int = 28) -> None:
        self.window = window
        self.name = f"moving-average-{window}"

    def daily(self, units: np.ndarray) -> np.ndarray:
        return np.repeat(units[:, -self.window:].mean(axis=1, keepdims=True), MAX_H, axis=1)


class StatsForecastModel(_Reference):
    """A statsforecast model fitted per SKU on its units history (``n_jobs=1``: one series at a time).

    Histories without any sale are not fitted: their forecast is 0. A fit
    that raises falls back to the history's mean and is counted in
    ``fallbacks`` (the report prints it).
    """

    def __init__(self, name: str, make) -> None:
        self.name = name
        self._make = make
        self._model = None
        self.fallbacks = 0

    def daily(self, units: np.ndarray) -> np.ndarray:
        if self._model is None:
            self._model = self._make()
        out = np.zeros((len(units), MAX_H))
        for i in np.flatnonzero(units.sum(axis=1) > 0):
            try:
                out[i] = self._model.forecast(y=units[i], h=MAX_H)["mean"]
            except Exception:  # noqa: BLE001 -- one series' numerical failure must not end a backtest
                self.fallbacks += 1
                out[i] = units[i].mean()
        return out


def auto_ets() -> StatsForecastModel:
    """statsforecast ``AutoETS`` with a weekly season; the model form chosen per series by AICc."""
    def make():
        from statsforecast.models import AutoETS
        return AutoETS(season_length=WEEK, model="ZZZ")
    return StatsForecastModel("autoets", make)


def croston() -> StatsForecastModel:
    """statsforecast ``CrostonOptimized``: separate smoothing of demand sizes and intervals, fitted."""
    def make():
        from statsforecast.models import CrostonOptimized
        return CrostonOptimized()
    return StatsForecastModel("croston-optimized", make)


def tsb(alpha_d: float = 0.1, alpha_p: float = 0.1) -> StatsForecastModel:
    """statsforecast ``TSB`` (Teunter-Syntetos-Babai): demand probability decays through zero periods."""
    def make():
        from statsforecast.models import TSB
        return TSB(alpha_d=alpha_d, alpha_p=alpha_p)
    return StatsForecastModel("tsb", make)


class RiverHoltWinters(_Reference):
    """river's additive Holt-Winters (weekly season), learnt one day at a time over the history.

    river initialises the season by dividing by the first week's mean, so
    leading weeks without sales are skipped (they carry no level anyway); a
    history without sales forecasts 0.
    """

    name = "river-holt-winters"

    def __init__(self, alpha: float = 0.2, beta: float = 0.02, gamma: float = 0.1) -> None:
        self.alpha, self.beta, self.gamma = alpha, beta, gamma

    def daily(self, units: np.ndarray) -> np.ndarray:
        from river.time_series import HoltWinters

        out = np.zeros((len(units), MAX_H))
        for i, row in enumerate(units):
            weeks = row[len(row) % WEEK:].reshape(-1, WEEK).sum(axis=1)
            selling = np.flatnonzero(weeks > 0)
            if len(selling) == 0:
                continue
            model = HoltWinters(self.alpha, self.beta, self.gamma, seasonality=WEEK)
            for y in row[len(row) % WEEK + WEEK * selling[0]:].tolist():
                model.learn_one(y)
            out[i] = model.forecast(MAX_H)
        return out


def reference_forecasters() -> dict[str, object]:
    """Every reference forecaster by its ``--baselines`` key, with the worker's EWMA baseline."""
    return {
        "ewma": EwmaForecaster(),
        "snaive7": SeasonalNaive7(),
        "ma28": MovingAverage(28),
        "autoets": auto_ets(),
        "croston": croston(),
        "tsb": tsb(),
        "holtwinters": RiverHoltWinters(),
    }
