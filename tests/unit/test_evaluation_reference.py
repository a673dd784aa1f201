"""Baselines not fitted at each origin: the Forecaster contract, their arithmetic, and the shared interval."""

import numpy as np
import pytest

from models.interface import HORIZONS, QUANTILES, STAGES
from stream_app.evaluation.anchors import baseline_forecasters
from stream_app.evaluation.backtest import FittedAtOrigin
from stream_app.evaluation.reference import (
    MovingAverage,
    SeasonalNaive7,
    horizon_totals,
    relative_spread,
)
from models.features import build_features


def _features(units: np.ndarray):
    hist = np.zeros((len(units), 6, units.shape[1]), dtype=np.float32)
    hist[:, 3] = units
    first = np.array([int(np.flatnonzero(u)[0]) if u.any() else -1 for u in units]) + 19_000
    return build_features(hist, 19_000 + units.shape[1] - 1, np.where(first >= 19_000, first, -1))


@pytest.fixture(scope="module")
def histories():
    rng = np.random.default_rng(3)
    steady = rng.poisson(5.0, 56)
    intermittent = rng.poisson(0.2, 56) * rng.integers(1, 30, 56)
    growing = rng.poisson(np.linspace(0.5, 12, 56))
    weekly = np.tile([9, 0, 3, 3, 4, 6, 12], 8)
    never = np.zeros(56)
    late = np.concatenate([np.zeros(40), rng.poisson(3.0, 16)])
    return np.stack([steady, intermittent, growing, weekly, never, late]).astype(np.float64)


# Forecasters fitted at each origin need a panel: tests/unit/test_evaluation_anchors.py checks them.
@pytest.mark.parametrize("key", [k for k, f in baseline_forecasters().items() if not isinstance(f, FittedAtOrigin)])
def test_every_reference_returns_non_crossing_non_negative_quantiles_of_the_right_shape(key, histories):
    f = baseline_forecasters()[key]
    out = f.predict(_features(histories))
    n = len(histories)
    assert out.quantiles.shape == (n, len(HORIZONS), len(QUANTILES))
    assert out.stage_probs.shape == (n, len(STAGES))
    assert np.isfinite(out.quantiles).all() and (out.quantiles >= 0).all()
    assert (np.diff(out.quantiles, axis=-1) >= 0).all()
    np.testing.assert_allclose(out.stage_probs.sum(axis=1), 1.0, rtol=1e-5)
    assert out.quantiles[4].max() == 0.0  # never sold: nothing forecast
    # Longer horizons cover more days: their median total cannot be smaller.
    assert (np.diff(out.quantiles[:, :, 1], axis=1) >= -1e-4).all()


def test_seasonal_naive_repeats_last_week_and_moving_average_scales_its_mean(histories):
    units = histories[:1]
    sn = SeasonalNaive7().predict(_features(units)).quantiles[0, :, 1]
    week = units[0, -7:]
    assert sn.tolist() == pytest.approx([week[0], week.sum(), 2 * week.sum()])
    ma = MovingAverage(28).predict(_features(units)).quantiles[0, :, 1]
    assert ma.tolist() == pytest.approx([units[0, -28:].mean() * h for h in HORIZONS], rel=1e-5)


def test_horizon_totals_sum_the_first_h_days():
    daily = np.arange(1.0, 15.0)[None, :]
    assert horizon_totals(daily)[0].tolist() == [daily[0, :h].sum() for h in HORIZONS]


def test_relative_spread_scales_the_history_quantiles_of_h_day_totals_to_the_forecast():
    units = np.tile([0.0, 0.0, 0.0, 14.0], 14)[None, :]  # one sale of 14 every 4 days
    p50 = np.array([[2.0, 20.0, 40.0]])
    q = relative_spread(units, p50)[0]
    one_day = np.quantile(units[0], [0.1, 0.9]) / units[0].mean()
    assert q[0].tolist() == pytest.approx([min(2.0 * one_day[0], 2.0), 2.0, 2.0 * one_day[1]])
    assert q[:, 1].tolist() == p50[0].tolist()
    flat = relative_spread(np.full((1, 56), 3.0), np.array([[3.0, 21.0, 42.0]]))[0]
    np.testing.assert_allclose(flat, np.repeat([[3.0], [21.0], [42.0]], 3, axis=1))  # no spread in the history
