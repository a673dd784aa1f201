"""Rolling-origin backtest: every forecaster, the same features, at every origin.

At each origin day the state is the end of that day: the features hold the
``history_days`` days up to and including it, the targets are the units
sold over the next 1, 7 and 14 days (:func:`models.samples.targets_at`).
Nothing after the origin reaches a forecaster; statistical references fit
on the history inside the features, so they cannot see it either.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from models.baselines import UNITS
from models.interface import HORIZONS, QUANTILES, STAGES, Forecaster
from models.samples import Panel, features_at, targets_at
from stream_app.evaluation.scores import naive_scale

HISTORY_DAYS = 56  # the worker's window (TRENDCAST_HISTORY_DAYS)


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
    spent in ``predict``; ``predicts_stages[name]``.
    """

    origins: np.ndarray
    rows: np.ndarray
    skus: list[str]
    targets: np.ndarray
    scale: np.ndarray
    quantiles: dict[str, np.ndarray] = field(default_factory=dict)
    stage_probs: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    predicts_stages: dict[str, bool] = field(default_factory=dict)
    feature_seconds: float = 0.0


def run_backtest(panel: Panel, forecasters: dict[str, Forecaster], origins: np.ndarray, rows: np.ndarray,
                 *, history_days: int = HISTORY_DAYS, on_origin=None) -> Backtest:
    """Run every forecaster at every origin on the SKUs ``rows`` of ``panel``.

    ``on_origin(i, origin_day)`` is called after each origin (progress).
    """
    n_o, n_r = len(origins), len(rows)
    bt = Backtest(origins=np.asarray(origins), rows=np.asarray(rows), skus=[panel.skus[r] for r in rows],
                  targets=np.full((n_o, n_r, len(HORIZONS)), np.nan), scale=np.zeros((n_o, n_r)))
    for name, f in forecasters.items():
        bt.quantiles[name] = np.zeros((n_o, n_r, len(HORIZONS), len(QUANTILES)))
        bt.stage_probs[name] = np.zeros((n_o, n_r, len(STAGES)))
        bt.seconds[name] = 0.0
        bt.predicts_stages[name] = getattr(f, "predicts_stages", True)
    for i, origin in enumerate(origins):
        start = time.perf_counter()
        features = features_at(panel, int(origin), history_days, rows=rows)
        bt.feature_seconds += time.perf_counter() - start
        bt.targets[i] = targets_at(panel, int(origin), rows=rows)
        bt.scale[i] = naive_scale(features.history[:, UNITS, :])
        for name, f in forecasters.items():
            start = time.perf_counter()
            out = f.predict(features)
            bt.seconds[name] += time.perf_counter() - start
            bt.quantiles[name][i] = out.quantiles
            bt.stage_probs[name][i] = out.stage_probs
        if on_origin is not None:
            on_origin(i, int(origin))
    return bt


def skus_with_sales(panel: Panel, first_day: int, last_day: int) -> np.ndarray:
    """Rows of ``panel`` with at least one unit sold on a day ``first_day + 1 .. last_day`` (inclusive).

    Those are the days the origins of :func:`origin_days` forecast: a SKU
    counts when it sold something some forecast covers.
    """
    lo = max(first_day + 1 - panel.first_day, 0)
    hi = min(last_day - panel.first_day + 1, panel.values.shape[2])
    return np.flatnonzero(panel.values[:, UNITS, lo:hi].sum(axis=1) > 0)
