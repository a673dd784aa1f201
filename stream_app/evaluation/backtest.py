"""Rolling-origin backtest: every forecaster, the same features, at every origin.

At each origin day the state is the end of that day: the features hold the
``history_days`` days up to and including it, the targets are the units
sold over the next 1, 7 and 14 days (:func:`models.panel.targets_at`).
Nothing after the origin reaches a forecaster; statistical references fit
on the history inside the features, so they cannot see it either. A
forecaster fitted at each origin (:class:`FittedAtOrigin`, e.g. the
LightGBM anchor) needs more past than the features hold: it is given the
panel cut at the end of the origin day (:func:`models.panel.panel_until`),
so the days after it do not exist for it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from models.baselines import UNITS, EwmaForecaster
from models.interface import HORIZONS, QUANTILES, STAGES, FeatureBatch, ForecastBatch, Forecaster
from models.panel import Panel, features_at, panel_until, targets_at
from stream_app.evaluation.scores import naive_scale

HISTORY_DAYS = 56  # the worker's window (TRENDCAST_HISTORY_DAYS)


@runtime_checkable
class FittedAtOrigin(Protocol):
    """A forecaster trained anew at each origin on the whole past, then asked for that origin's forecasts.

    :func:`run_backtest` calls ``fit(panel, origin_day)`` with the panel as
    known at the end of ``origin_day``, then ``predict(features)`` with the
    features at that origin.
    """

    name: str
    version: str

    def fit(self, panel: Panel, origin_day: int) -> None:
        """Learn from ``panel``, whose last day is ``origin_day`` at the latest."""
        ...

    def predict(self, features: FeatureBatch) -> ForecastBatch:
        """Forecast the SKUs of ``features`` (at ``origin_day``)."""
        ...


def origin_days(first_day: int, last_day: int, every: int, horizon: int = max(HORIZONS)) -> np.ndarray:
    """Origins ``first_day, first_day + every, ...`` up to ``last_day − horizon`` (days since 1970-01-01).

    ``last_day`` is the last day of the evaluation period (inclusive), so
    the longest horizon of the last origin ends on it.
    """
    if every < 1:
        raise ValueError(f"origins must be at least 1 day apart, got {every}")
    days = np.arange(first_day, last_day - horizon + 1, every, dtype=np.int64)
    if len(days) == 0:
        raise ValueError(f"the period holds no origin: it must be longer than {horizon} days")
    return days


@dataclass
class Backtest:
    """What every forecaster said at every origin, and what happened.

    ``origins`` ``(O,)`` days; ``rows`` ``(R,)`` panel rows (SKUs) scored;
    ``targets`` ``(O, R, len(HORIZONS))`` units (NaN past the data);
    ``scale`` ``(O, R)`` in-sample seasonal-naive MAE per day of each history
    (the MASE scale); ``quantiles[name]`` ``(O, R, len(HORIZONS), 3)``;
    ``stage_probs[name]`` ``(O, R, len(STAGES))``; ``seconds[name]`` time
    spent in ``predict``; ``fit_seconds[name]`` in ``fit``, for the
    forecasters fitted at each origin; ``predicts_stages[name]``; ``fallback_rows[name]``
    (SKU, origin) pairs whose forecast was not finite and came from the
    fallback forecaster instead, as in the worker.
    """

    origins: np.ndarray
    rows: np.ndarray
    skus: list[str]
    targets: np.ndarray
    scale: np.ndarray
    quantiles: dict[str, np.ndarray] = field(default_factory=dict)
    stage_probs: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    fit_seconds: dict[str, float] = field(default_factory=dict)
    predicts_stages: dict[str, bool] = field(default_factory=dict)
    fallback_rows: dict[str, int] = field(default_factory=dict)
    feature_seconds: float = 0.0


def run_backtest(panel: Panel, forecasters: dict[str, Forecaster], origins: np.ndarray, rows: np.ndarray,
                 *, history_days: int = HISTORY_DAYS, fallback: Forecaster | None = None,
                 on_origin=None) -> Backtest:
    """Run every forecaster at every origin on the SKUs ``rows`` of ``panel``.

    A row a forecaster returns with non-finite numbers is answered by
    ``fallback`` (default: the worker's EWMA baseline, which the worker
    also falls back to) and counted. A :class:`FittedAtOrigin` forecaster
    is fitted at each origin on the panel cut there, before it predicts.
    ``on_origin(i, origin_day)`` is called after each origin (progress).
    """
    fallback = fallback if fallback is not None else EwmaForecaster()
    n_o, n_r = len(origins), len(rows)
    bt = Backtest(origins=np.asarray(origins), rows=np.asarray(rows), skus=[panel.skus[r] for r in rows],
                  targets=np.full((n_o, n_r, len(HORIZONS)), np.nan), scale=np.zeros((n_o, n_r)))
    for name, f in forecasters.items():
        bt.quantiles[name] = np.zeros((n_o, n_r, len(HORIZONS), len(QUANTILES)))
        bt.stage_probs[name] = np.zeros((n_o, n_r, len(STAGES)))
        bt.seconds[name] = 0.0
        bt.predicts_stages[name] = getattr(f, "predicts_stages", True)
        bt.fallback_rows[name] = 0
    fitted = [name for name, f in forecasters.items() if isinstance(f, FittedAtOrigin)]
    bt.fit_seconds = dict.fromkeys(fitted, 0.0)
    for i, origin in enumerate(origins):
        start = time.perf_counter()
        features = features_at(panel, int(origin), history_days, rows=rows)
        bt.feature_seconds += time.perf_counter() - start
        bt.targets[i] = targets_at(panel, int(origin), rows=rows)
        bt.scale[i] = naive_scale(features.history[:, UNITS, :])
        past = panel_until(panel, int(origin)) if fitted else None
        for name in fitted:
            start = time.perf_counter()
            forecasters[name].fit(past, int(origin))
            bt.fit_seconds[name] += time.perf_counter() - start
        for name, f in forecasters.items():
            start = time.perf_counter()
            out = f.predict(features)
            bt.seconds[name] += time.perf_counter() - start
            bt.quantiles[name][i] = out.quantiles
            bt.stage_probs[name][i] = out.stage_probs
            bad = ~(np.isfinite(out.quantiles).all(axis=(1, 2)) & np.isfinite(out.stage_probs).all(axis=1))
            if bad.any():
                backup = fallback.predict(fallback_features(features, np.flatnonzero(bad)))
                bt.quantiles[name][i, bad] = backup.quantiles
                bt.stage_probs[name][i, bad] = backup.stage_probs
                bt.fallback_rows[name] += int(bad.sum())
        if on_origin is not None:
            on_origin(i, int(origin))
    return bt


def fallback_features(features: FeatureBatch, rows: np.ndarray) -> FeatureBatch:
    """The ``rows`` of a feature batch."""
    text = None if features.text is None else features.text[rows]
    has_text = None if features.has_text is None else features.has_text[rows]
    return dataclasses.replace(features, history=features.history[rows],
                               days_since_first_sale=features.days_since_first_sale[rows],
                               as_of_weekday=features.as_of_weekday[rows], text=text, has_text=has_text)


def skus_with_sales(panel: Panel, first_day: int, last_day: int) -> np.ndarray:
    """Rows of ``panel`` with at least one unit sold on a day ``first_day + 1 .. last_day`` (inclusive).

    Those are the days the origins of :func:`origin_days` forecast: a SKU
    counts when it sold something some forecast covers.
    """
    lo = max(first_day + 1 - panel.first_day, 0)
    hi = min(last_day - panel.first_day + 1, panel.values.shape[2])
    return np.flatnonzero(panel.values[:, UNITS, lo:hi].sum(axis=1) > 0)
