"""The worker's day loop, replayed offline: forecast the SKUs with events, learn outcomes, calibrate, track stages.

For every closed day, in the order of the forecast tick (:mod:`stream_app.ticks`):

1. outcomes: forecasts whose horizon ended that day meet the units sold
   (:func:`stream_app.outcomes.realised`, through the worker's
   :class:`~stream_app.outcomes.Pending`) and teach the calibrator;
2. forecasts: every SKU with an event in the ``active_days`` up to that
   day (what makes the worker forecast it) gets features at the end of the
   day (:func:`models.panel.features_at`, the worker's feature function)
   and a forecast, calibrated once the calibrator is ready; a SKU that went
   quiet that day gets its last forecast, zeros (the worker's
   ``active: false``);
3. stages: the day's stage probabilities advance those SKUs' trackers
   (:func:`models.stage_tracker.track`); a confirmed change is one alert.

The model runs once per day for both replays: calibration changes what is
published, never the model's input or its stage probabilities, so the runs
with and without calibration share the raw forecasts and the alerts.

Offline simplifications: one calibrator learns from every SKU (the worker
keeps one per partition, each learning from its partition's share of a
category); events are never late; the rules are passed in, as the worker
builds them from its settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from models.baselines import UNITS, EwmaForecaster
from models.calibration import CalibrationRules, Calibrator
from models.calibration_groups import calibration_groups
from models.fallback import GuardedForecaster
from models.interface import HORIZONS, STAGES, Forecaster
from models.panel import Panel, features_at, targets_at
from models.stage_evidence import EvidenceRules, allowed_stages
from models.stage_tracker import TrackerRules, TrackerState, track
from stream_app.outcomes import Made, Pending, realised


@dataclass(frozen=True)
class DayForecasts:
    """The raw forecasts of every replayed day.

    ``days`` ``(D,)`` closed days (days since 1970-01-01); ``forecast``
    ``(D, n)`` whether the SKU was forecast at the end of that day; ``raw``
    ``(D, n, len(HORIZONS), 3)`` the model's p10/p50/p90 units and ``probs``
    ``(D, n, len(STAGES))`` its stage probabilities, NaN where not forecast;
    ``live`` ``(D, n)`` forecast and still active (the others are a SKU's
    last forecast, published as zeros); ``fallback_rows``: forecasts the
    EWMA baseline gave because the model's were not finite (as in the worker).
    """

    days: np.ndarray
    forecast: np.ndarray
    raw: np.ndarray
    probs: np.ndarray
    fallback_rows: int = 0
    live: np.ndarray | None = None


@dataclass(frozen=True)
class StageChanges:
    """Stage changes, one per element: panel row (SKU), day, stage before and after (indices into STAGES)."""

    rows: np.ndarray
    days: np.ndarray
    previous: np.ndarray
    stage: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class Published:
    """What one replay published: ``quantiles`` ``(D, n, len(HORIZONS), 3)`` units (NaN: not forecast), drift resets."""

    quantiles: np.ndarray
    drifts: list[tuple[int, str]] = field(default_factory=list)  # (day, category) the detector fired


def active(panel: Panel, days: np.ndarray, active_days: int = 56) -> tuple[np.ndarray, np.ndarray]:
    """``(D, n)`` twice: whether each SKU had an event in the ``active_days`` up to each day (live), and
    whether the worker forecasts it that day (live, or live the day before: its last forecast)."""
    busy = (panel.values != 0).any(axis=1).astype(np.int64)  # (n, days of the panel)
    csum = np.concatenate([np.zeros((len(busy), 1), np.int64), np.cumsum(busy, axis=1)], axis=1)

    def live_at(d: np.ndarray) -> np.ndarray:
        hi = np.clip(d - panel.first_day + 1, 0, busy.shape[1])
        lo = np.clip(d - active_days - panel.first_day + 1, 0, busy.shape[1])
        return (csum[:, hi] - csum[:, lo] > 0).T

    days = np.asarray(days)
    live = live_at(days)
    return live, live | live_at(days - 1)


def forecast_days(panel: Panel, forecaster: Forecaster, days: np.ndarray, history_days: int,
                  on_day=None, active_days: int | None = None) -> DayForecasts:
    """The model's forecasts at the end of each of ``days`` for the SKUs the worker forecasts then.

    ``forecaster`` is guarded as in the worker: non-finite rows come from the
    EWMA baseline and are counted. ``on_day(i, day)`` after each day
    (progress). ``active_days``: as the worker's setting (default: ``history_days``).
    """
    guarded = GuardedForecaster(forecaster, EwmaForecaster())
    live, forecast = active(panel, days, active_days or history_days)
    n_d, n = forecast.shape
    raw = np.full((n_d, n, len(HORIZONS), 3), np.nan, dtype=np.float32)
    probs = np.full((n_d, n, len(STAGES)), np.nan, dtype=np.float32)
    fallbacks = 0
    for i, day in enumerate(days):
        rows = np.flatnonzero(forecast[i])
        if len(rows):
            out = guarded.predict(features_at(panel, int(day), history_days, rows=rows))
            raw[i, rows] = out.quantiles
            probs[i, rows] = out.stage_probs
            fallbacks += 0 if out.fallback is None else int(out.fallback.sum())
        if on_day is not None:
            on_day(i, int(day))
    return DayForecasts(np.asarray(days), forecast, raw, probs, fallbacks, live)


def publish(fc: DayForecasts, panel: Panel, groups: np.ndarray, rules: CalibrationRules | None) -> Published:
    """Replay the learning half of each tick: learn the day's outcomes, then calibrate the day's forecasts.

    ``groups`` ``(n,)`` category of each panel row ("unknown" rows are
    grouped by sales level as the worker groups them);
    ``rules`` None publishes the raw quantiles (calibration off). Quantiles
    are rounded to 4 decimals as the worker publishes them.
    """
    if rules is None:
        return Published(np.round(fc.raw.astype(np.float64), 4))
    cal, pending = Calibrator(rules, len(HORIZONS)), Pending(HORIZONS)
    units = panel.values[:, UNITS, :]
    out = Published(np.full(fc.raw.shape, np.nan))
    groups = np.asarray(groups, dtype=object)
    for i, day in enumerate(fc.days):
        day = int(day)
        for h_idx, made_day, made in pending.due(day):
            rows = np.array([int(k) for k in made.keys])
            history = units[rows, : day - panel.first_day + 1]
            actual = realised(history, day, made_day, HORIZONS[h_idx])
            out.drifts += [(day, g) for g in cal.learn(h_idx, made.quantiles[:, h_idx], actual, made.groups)]
        pending.expire(day)
        rows = np.flatnonzero(fc.forecast[i])
        if not len(rows):
            continue
        raw = fc.raw[i, rows].astype(np.float64)
        end = day - panel.first_day + 1
        day_groups = calibration_groups(groups[rows], units[rows, max(0, end - 28): end].sum(axis=1) / 28.0)
        quant = np.round(cal.correct(raw, day_groups) if cal.ready else raw, 4)
        on = fc.live[i, rows] if fc.live is not None else np.ones(len(rows), dtype=bool)
        quant[~on] = 0.0  # a SKU's last forecast, as it went quiet
        out.quantiles[i, rows] = quant
        # Keys are panel rows here (the worker's are SKU keys): Pending only carries them.
        rows, raw, quant = rows[on], raw[on], quant[on]
        if len(rows):
            pending.add(day, Made([b"%d" % r for r in rows], raw.astype(np.float32), quant.astype(np.float32),
                                  day_groups[on]))
    return out


def track_days(fc: DayForecasts, rules: TrackerRules, panel: Panel | None = None,
               evidence: EvidenceRules | None = None, history_days: int = 56) -> tuple[StageChanges, np.ndarray]:
    """Advance each SKU's tracker on the days it was forecast; the confirmed changes, and ``(D, n)`` tracked stages.

    With ``panel`` and ``evidence``, a stage must agree with the SKU's sales
    as in the worker (:func:`models.stage_evidence.allowed_stages` over the
    same ``history_days`` window).
    """
    n_d, n = fc.forecast.shape
    state = TrackerState.empty(n)
    tracked = np.full((n_d, n), -1, dtype=np.int64)
    found: list[tuple[np.ndarray, ...]] = []
    for i, day in enumerate(fc.days):
        rows = np.flatnonzero(fc.forecast[i])
        if len(rows):
            allowed = None
            if panel is not None and evidence is not None:
                feats = features_at(panel, int(day), history_days, rows=rows)
                allowed = allowed_stages(feats.history[:, UNITS, :], feats.days_since_first_sale, evidence)
            step = track(_take(state, rows), fc.probs[i, rows], int(day), rules, allowed)
            _put(state, rows, step.state)
            ch = np.flatnonzero(step.changed)
            found.append((rows[ch], np.full(len(ch), int(day)), step.previous[ch], step.state.stage[ch]))
        tracked[i] = state.stage
    cols = [np.concatenate([f[k] for f in found]).astype(np.int64) if found else np.zeros(0, np.int64)
            for k in range(4)]
    return StageChanges(*cols), tracked


def _take(state: TrackerState, rows: np.ndarray) -> TrackerState:
    return TrackerState(*(getattr(state, f.name)[rows] for f in fields(TrackerState)))


def _put(state: TrackerState, rows: np.ndarray, part: TrackerState) -> None:
    for f in fields(TrackerState):
        getattr(state, f.name)[rows] = getattr(part, f.name)


def outcomes(panel: Panel, days: np.ndarray) -> np.ndarray:
    """``(D, n, len(HORIZONS))`` units sold over the ``h`` days after each day; NaN past the panel.

    :func:`models.panel.targets_at`, day by day.
    """
    return np.stack([targets_at(panel, int(d)) for d in days]).astype(np.float64)
