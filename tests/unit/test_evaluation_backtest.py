"""The rolling-origin backtest: origins, no leakage, SKUs with sales, and the summary's comparisons."""

import numpy as np
import pytest

from models.baselines import UNITS
from models.interface import HORIZONS, STAGES, ForecastBatch
from stream_app.data.samples import panel_from_series
from stream_app.evaluation.backtest import origin_days, run_backtest, skus_with_sales
from stream_app.evaluation.metrics import SKU_AGES, sku_ages, summarise
from stream_app.evaluation.reference import SeasonalNaive7
from stream_app.data.offline import DailySeries

D0 = 19_000  # first day of the synthetic data


def _series(units: np.ndarray) -> DailySeries:
    """Units ``(n_skus, days)`` from day D0 as a DailySeries (one order line per unit-day)."""
    s, d = np.nonzero(units)
    counts = np.zeros((len(s), 5), dtype=np.int64)
    counts[:, 3] = units[s, d]
    counts[:, 4] = 1
    return DailySeries(tuple(f"sku-{i}" for i in range(len(units))), s.astype(np.int64), (d + D0).astype(np.int64),
                       counts, counts[:, 3] * 2.0, {})


class Recorder:
    """Remembers what it was shown; forecasts the units of the last ``h`` days it saw, per horizon."""

    name, version = "recorder", "1"

    def __init__(self):
        self.seen = []

    def predict(self, features):
        units = features.history[:, UNITS, :].astype(np.float64)
        self.seen.append((features.as_of_day, units.copy()))
        p50 = np.stack([units[:, -h:].sum(axis=1) for h in HORIZONS], axis=1)
        q = np.repeat(p50[:, :, None], 3, axis=2)
        return ForecastBatch(quantiles=q, stage_probs=np.full((len(units), 4), 0.25))


class Oracle:
    """Cheats: reads the answer from the panel. Only a perfect score is possible for it."""

    name, version, predicts_stages = "oracle", "1", True

    def __init__(self, panel, rows, truth_stage):
        self.panel, self.rows, self.truth_stage = panel, rows, truth_stage

    def predict(self, features):
        start = features.as_of_day - self.panel.first_day + 1
        units = self.panel.values[self.rows, UNITS, :].astype(np.float64)
        p50 = np.stack([units[:, start:start + h].sum(axis=1) for h in HORIZONS], axis=1)
        probs = np.eye(len(STAGES))[np.full(len(self.rows), self.truth_stage)]
        return ForecastBatch(quantiles=np.repeat(p50[:, :, None], 3, axis=2), stage_probs=probs)


def test_origins_step_from_the_first_day_and_leave_room_for_the_longest_horizon():
    days = origin_days(100, 140, 7)
    assert days.tolist() == [100, 107, 114, 121]  # 121 + 14 = 135 <= 140 < 128 + 14
    assert days[-1] + max(HORIZONS) <= 140
    with pytest.raises(ValueError, match="no origin"):
        origin_days(100, 110, 7)


def test_features_end_at_the_origin_and_never_include_target_days():
    days = 120
    # Every day's units are its own index + 1: any value seen tells the day it came from.
    units = np.tile(np.arange(1, days + 1), (3, 1)).astype(np.int64)
    panel = panel_from_series(_series(units))
    origins = origin_days(D0 + 60, D0 + days - 1, 7)
    rows = np.arange(3)
    rec = Recorder()
    bt = run_backtest(panel, {"recorder": rec}, origins, rows, history_days=56)
    for origin, (as_of, seen) in zip(origins, rec.seen):
        assert as_of == origin
        assert seen.shape == (3, 56)
        assert seen.max() == origin - D0 + 1  # the origin day itself, nothing later
    for i, origin in enumerate(origins):
        k = origin - D0  # index of the origin day
        expected = [units[0, k + 1:k + 1 + h].sum() for h in HORIZONS]
        assert bt.targets[i, 0].tolist() == expected
    # Were the target days in the history, "the last h days" would be the answer; they are not.
    metrics = summarise(bt, model=None, stages=None)
    assert all(metrics["forecasters"]["recorder"]["horizons"][str(h)]["wape"] > 0 for h in HORIZONS)


def test_skus_with_sales_need_a_unit_on_a_forecast_day():
    units = np.zeros((4, 60), dtype=np.int64)
    units[0, 30] = 1  # on the first origin day: no origin forecasts it
    units[1, 31] = 2  # the day after: counts
    units[2, 59] = 1  # the last day: counts
    units[3, 10] = 5  # before the period only
    panel = panel_from_series(_series(units))
    assert skus_with_sales(panel, D0 + 30, D0 + 59).tolist() == [1, 2]


def test_summary_names_the_best_baseline_and_the_models_improvement():
    rng = np.random.default_rng(5)
    units = rng.poisson(rng.gamma(2.0, 2.0, (6, 1)), (6, 110))
    panel = panel_from_series(_series(units))
    rows = np.arange(6)
    origins = origin_days(D0 + 60, D0 + 109, 7)
    forecasters = {"oracle": Oracle(panel, rows, truth_stage=2), "snaive7": SeasonalNaive7(), "last": Recorder()}
    bt = run_backtest(panel, forecasters, origins, rows)
    stages = np.full((len(origins), 6), 2)
    stages[:, 0] = -1  # unlabelled pairs are left out of F1
    m = summarise(bt, model="oracle", stages=stages)
    fs = m["forecasters"]
    assert fs["oracle"]["horizons"]["7"]["wape"] == 0.0
    assert fs["oracle"]["horizons"]["7"]["coverage_p10_p90"] == 1.0
    best = min(["snaive7", "last"], key=lambda n: fs[n]["horizons"]["7"]["wape"])
    assert m["best_baseline_7d"] == best
    assert m["model_wape_7d_improvement"] == pytest.approx(1.0)  # a perfect model removes all the error
    assert fs["oracle"]["stages"]["macro_f1"] == 1.0 and fs["oracle"]["stages"]["pairs"] == 5 * len(origins)
    assert fs["snaive7"]["stages"] is None  # no stage model: no F1
    assert set(fs["oracle"]["wape_7d_by_stage"]) == {"maturity", "unlabelled"}


class Flaky(Recorder):
    """Returns NaN for its first SKU: the backtest answers that row with the fallback, as the worker does."""

    def predict(self, features):
        out = super().predict(features)
        out.quantiles[0] = np.nan
        return out


def test_non_finite_rows_come_from_the_fallback_and_are_counted():
    units = np.tile(np.arange(1, 101), (3, 1)).astype(np.int64)
    panel = panel_from_series(_series(units))
    origins = origin_days(D0 + 60, D0 + 99, 7)
    bt = run_backtest(panel, {"flaky": Flaky(), "snaive7": SeasonalNaive7()}, origins, np.arange(3),
                      fallback=SeasonalNaive7())
    assert bt.fallback_rows == {"flaky": len(origins), "snaive7": 0}
    np.testing.assert_array_equal(bt.quantiles["flaky"][:, 0], bt.quantiles["snaive7"][:, 0])
    assert np.isfinite(bt.quantiles["flaky"]).all()


def test_sku_ages_split_established_new_and_unsold_skus_at_each_origin():
    first_sale = np.array([100, 150, 173, 180, -1])
    ages = sku_ages(first_sale, np.array([150, 178]))
    assert [[SKU_AGES[a] for a in row] for row in ages] == [
        ["established", "new", "not sold yet", "not sold yet", "not sold yet"],  # 150 - 28 < 150: new on its day
        ["established", "established", "new", "not sold yet", "not sold yet"],  # 178 - 28 = 150: no longer new
    ]


def test_summary_scores_each_sku_age_apart():
    units = np.zeros((3, 110), dtype=np.int64)
    units[0, :] = 2  # established from the start
    units[1, 70:] = 3  # first sale 10 days before the first origin: new there
    units[2, 95:] = 1  # first sale after the first origin
    panel = panel_from_series(_series(units))
    origins = origin_days(D0 + 80, D0 + 109, 7)
    rows = np.arange(3)
    bt = run_backtest(panel, {"snaive7": SeasonalNaive7()}, origins, rows)
    ages = sku_ages(panel.first_sale_day, origins)
    m = summarise(bt, model=None, stages=None, ages=ages)["forecasters"]["snaive7"]
    pairs = {a: m["by_sku_age"][a]["7"]["pairs"] for a in SKU_AGES}
    assert pairs == {a: int((ages == i).sum()) for i, a in enumerate(SKU_AGES)}
    assert sum(pairs.values()) == m["horizons"]["7"]["pairs"]
    assert m["by_sku_age"]["established"]["7"]["wape"] == 0.0  # 2 a day, every day: last week is the answer
