"""The drift replay reads back what the worker's ticks publish, and calibration recovers a ×2 shift."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import orjson

from models.baselines import EwmaForecaster
from models.calibration import CalibrationRules, Calibrator
from models.interface import HORIZONS, STAGES, TEXT_DIM, ForecastBatch
from models.panel import Panel
from stream_app.data.samples import panel_from_series
from models.stage_tracker import TrackerRules
from stream_app.data.eventfiles import event_files, read_lines
from stream_app.data.replay import EventFiles
from stream_app.evaluation import dayloop
from stream_app.evaluation.dataset import daily_series
from stream_app.evaluation.drift import Event, evaluate_scenarios
from stream_app.evaluation.drift_metrics import RecoveryRules
from stream_app.core.ingest import Ingestor
from stream_app.core.outcomes import Pending
from stream_app.sim import Scenarios, Simulator
from stream_app.sim.output import write_simulation
from stream_app.core.scorer import Scorer
from stream_app.settings import Settings
from stream_app.core.ticks import TickTools, run_tick
from stream_app.core.windows import KIND_CART, KIND_CLICK, KIND_ORDER, WindowSpec

Rec = namedtuple("Rec", "offset key value")
DAY, HOUR = 86_400_000, 3_600_000
KINDS = {"clicks": KIND_CLICK, "carts": KIND_CART, "orders": KIND_ORDER}
# The worker's defaults on one partition, the baseline forecasting (the tests' scorer replaces it).
SETTINGS = Settings(partitions=1, forecaster="baseline")


def worker_ticks(folder, categories):
    """Feed a simulation's events day by day through the worker's Ingestor and ticks (one partition, calibration on)."""
    ing = Ingestor({}, WindowSpec(history_days=56), grace_ms=HOUR, max_ahead_ms=3 * DAY, future_confirm=3)
    tools = TickTools(Scorer(EwmaForecaster()), rules=TrackerRules(), calibrator=Calibrator(CalibrationRules()),
                      pending=Pending(), groups=lambda keys: np.array([categories[k.decode()] for k in keys], object))
    events = []
    for kind, path in event_files(folder).items():
        for _, raw in read_lines(path) if kind in KINDS else ():
            ev = orjson.loads(raw)
            events.append((ev["ts"], KINDS[kind], ev["sku"].encode(), raw))
    events.sort(key=lambda e: e[:2])
    offsets, forecasts, alerts, now = dict.fromkeys(KINDS.values(), 0), {}, set(), 0.0
    for day in range(events[0][0] // DAY, events[-1][0] // DAY + 1):
        for kind in KINDS.values():
            recs = []
            for ts, k, key, raw in events:
                if k == kind and ts // DAY == day:
                    recs.append(Rec(offsets[kind], key, raw))
                    offsets[kind] += 1
            now += 100.0
            ing.process(kind, 0, recs, now=now)
        ing.clock(0).advance_to((day + 1) * DAY + HOUR + 1)
        for closed in ing.clock(0).take_closed_days(now):
            res = run_tick(ing, 0, closed, tools)
            for _, value in res.forecasts:
                m = orjson.loads(value)
                forecasts[(m["sku"], closed)] = [m["horizons"][str(h)][q] for h in HORIZONS
                                                 for q in ("p10", "p50", "p90")]
            for _, value in res.alerts:
                a = orjson.loads(value)
                alerts.add((a["sku"], a["as_of"] // DAY - 1, a["stage"]))
    return forecasts, alerts


def test_the_replay_publishes_what_the_worker_publishes(tmp_path):
    """The drift replay's arrays hold the messages of the worker's ticks fed day by day (one partition)."""
    sim = Simulator(n_skus=12, days=40, start_ms=19_900 * DAY, seed=4,
                    scenarios=Scenarios(level_shift_factors=(2.0,)))
    write_simulation(sim, tmp_path)
    categories = {r["sku"]: r["category"] for r in sim.catalog()}
    want, want_alerts = worker_ticks(tmp_path, categories)
    panel = panel_from_series(daily_series(tmp_path))
    # A replay of files ends with its last day open (no later event closes it); the ticks above close it by hand.
    want = {k: v for k, v in want.items() if k[1] < panel.last_day}
    want_alerts = {a for a in want_alerts if a[1] < panel.last_day}

    days = np.arange(panel.first_day, panel.last_day + 1)
    out = dayloop.replay(SETTINGS, EventFiles(tmp_path).rows, list(panel.skus), days, Scorer(EwmaForecaster()))
    got, raw = out.runs["calibrated"].quantiles, out.runs["uncalibrated"].quantiles
    i, j = np.nonzero(out.forecasts.forecast)
    mine = {(panel.skus[c], int(days[r])): got[r, c].ravel().tolist() for r, c in zip(i, j)}
    assert set(mine) == set(want) and len(want) > 200
    assert np.allclose([mine[k] for k in want], list(want.values()), rtol=1e-4, atol=2e-4)
    assert np.isnan(got[~out.forecasts.forecast]).all()
    assert (np.abs(got - raw)[out.forecasts.forecast] > 1e-3).any()  # calibration did change something
    changes = out.alerts
    assert len(want_alerts) > 3
    assert {(panel.skus[r], int(d), STAGES[s]) for r, d, s in zip(changes.rows, changes.days, changes.stage)} \
        == want_alerts
    last = out.tracked[-1]
    assert (last >= 0).sum() == len({k[0] for k in want})  # every forecast SKU holds a stage


class PreShiftForecaster:
    """Deliberately biased: always the quantiles of Poisson(4 a day), whatever the history says."""

    name, version = "pre-shift", "1"

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.q = np.array([np.quantile(rng.poisson(4.0 * h, 20_000), [0.1, 0.5, 0.9]) for h in HORIZONS])

    def predict(self, features) -> ForecastBatch:
        n = len(features)
        return ForecastBatch(np.broadcast_to(self.q, (n, len(HORIZONS), 3)).astype(np.float32).copy(),
                             np.full((n, 4), 0.25, np.float32))


def test_calibration_recovers_coverage_after_a_doubling_that_the_model_ignores():
    n, n_days, shift, first = 60, 120, 70, 19_000
    rng = np.random.default_rng(1)
    rate = np.where(np.arange(n_days) >= shift, 8.0, 4.0)
    units = rng.poisson(rate, (n, n_days))
    values = np.zeros((n, 6, n_days), np.float32)
    values[:, 3] = units
    skus = [f"s{i}" for i in range(n)]
    panel = Panel(values, skus, first, np.full(n, first), np.zeros((n, TEXT_DIM), np.float32),
                  np.zeros(n, bool), False)

    def rows():  # one order a SKU-day at noon, with that day's units; one category
        yield from (("catalog", {"schema_version": 1, "sku": s, "title": s, "description": "", "category": "a",
                                 "ts": first * DAY}) for s in skus)
        for d in range(n_days):
            for i in np.flatnonzero(units[:, d]):
                yield "orders", {"schema_version": 1, "event_id": f"o{i}-{d}", "order_id": f"o{i}-{d}", "sku": skus[i],
                                 "ts": (first + d) * DAY + 12 * HOUR, "qty": int(units[i, d]), "unit_price": 1.0,
                                 "currency": "EUR"}

    days = np.arange(first, first + n_days)
    out = dayloop.replay(SETTINGS, rows, skus, days, Scorer(PreShiftForecaster()))
    fc = out.forecasts
    assert fc.forecast[1:-1].all()  # every SKU active from its first sale; nothing closes the last day
    published = {k: r.quantiles for k, r in out.runs.items()}
    event = Event(np.arange(n), np.full(n, first + shift), "x2")
    out = evaluate_scenarios({"level_shift": event}, fc, published, dayloop.outcomes(panel, days), first + 20,
                             days[-1], RecoveryRules())["level_shift"]["horizons"]
    one, week = out["1"], out["7"]
    assert one["uncalibrated"]["before"] > 0.75 and one["uncalibrated"]["after"] < 0.5
    assert week["uncalibrated"]["before"] > 0.75 and week["uncalibrated"]["after"] < 0.1
    assert one["uncalibrated"]["days_to_recover"] is None and week["uncalibrated"]["days_to_recover"] is None
    assert one["calibrated"]["after"] > one["uncalibrated"]["after"] + 0.25
    assert week["calibrated"]["after"] > week["uncalibrated"]["after"] + 0.5
    assert one["calibrated"]["days_to_recover"] <= 7
