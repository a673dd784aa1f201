"""The strong anchors: weekly quantiles' exact values, the LightGBM anchor's learning, and no leakage past the origin."""

import numpy as np
import pytest
from test_evaluation_backtest import D0, _series

from models.interface import HORIZONS
from models.panel import panel_until
from stream_app.data.samples import panel_from_series
from stream_app.evaluation.anchors import WeeklyQuantiles
from stream_app.evaluation.backtest import origin_days, run_backtest
from models.features import build_features

WEEKS = [3, 0, 5, 1, 8, 2, 0, 4]  # oldest first; the last ends on the origin day


def _features(units: np.ndarray, day: int = D0 + 100):
    hist = np.zeros((len(units), 6, units.shape[1]), dtype=np.float32)
    hist[:, 3] = units
    return build_features(hist, day, np.full(len(units), day - 200))


def _spread(weeks, first_day_share=(1.0, 0, 0, 0, 0, 0, 0)):
    """Daily units whose 7-day totals are ``weeks`` (the week's units on its first day by default)."""
    return np.concatenate([np.asarray(first_day_share) * w for w in weeks])[None, :]


def test_weekly_quantiles_are_the_quantiles_of_the_last_8_weeks_and_of_their_consecutive_pairs():
    # 14 extra older days must be ignored: only the 8 weeks ending at the origin count.
    units = np.concatenate([np.full((1, 14), 50.0), _spread(WEEKS)], axis=1)
    q = WeeklyQuantiles().predict(_features(units)).quantiles[0].astype(np.float64)
    # weeks sorted 0 0 1 2 3 4 5 8: p10 at 0.7 of the way from the 1st to the 2nd, p50 halfway 4th-5th, p90 0.3 7th-8th
    week = [0.0, 2.5, 5.9]
    # pairs 3 5 6 9 10 2 4, sorted 2 3 4 5 6 9 10: p10 at 0.6 of 1st-2nd, p50 the 4th, p90 0.4 of 6th-7th
    fortnight = [2.6, 5.0, 9.4]
    expected = {1: [w / 7 for w in week], 7: week, 14: fortnight}
    np.testing.assert_allclose(q, [expected[h] for h in HORIZONS], rtol=1e-6, atol=1e-6)
    # Where in the week the units fall does not matter.
    spread = WeeklyQuantiles().predict(_features(_spread(WEEKS, [0.5, 0, 0.25, 0, 0, 0.25, 0]))).quantiles
    np.testing.assert_allclose(spread[0], q, rtol=1e-6)


def test_weekly_quantiles_refuse_a_history_shorter_than_8_weeks():
    with pytest.raises(ValueError, match="56 days"):
        WeeklyQuantiles().predict(_features(np.ones((1, 49))))


def _noisy_panel(days: int = 200, seed: int = 3):
    """30 SKUs with Poisson sales at rates 0.5 .. 6 per day, one that starts late, one that never sells."""
    rng = np.random.default_rng(seed)
    rates = np.repeat([0.5, 1.0, 2.0, 3.0, 5.0, 6.0], 5)[:, None]
    units = rng.poisson(rates, (len(rates), days))
    late = np.zeros((1, days), dtype=np.int64)
    late[0, days - 30:] = rng.poisson(2.0, 30)
    never = np.zeros((1, days), dtype=np.int64)
    return np.concatenate([units, late, never]).astype(np.int64)


@pytest.fixture(scope="module")
def lightgbm_anchor():
    """``make(**overrides)``: the anchor with its fixed hyperparameters, on one thread (CI machines are shared)."""
    pytest.importorskip("lightgbm")
    from stream_app.evaluation.gbm import LightGbmQuantiles

    return lambda **kw: LightGbmQuantiles(**{"threads": 1, **kw})


def test_lightgbm_learns_constant_sales_and_keeps_its_quantiles_ordered(lightgbm_anchor):
    days = 200
    rates = np.repeat([1, 2, 3, 4, 5, 6], 5)[:, None]
    units = np.broadcast_to(rates, (len(rates), days)).copy()
    panel = panel_from_series(_series(units))
    origin = D0 + days - 1
    model = lightgbm_anchor()
    model.fit(panel, origin)
    from models.panel import features_at

    q = model.predict(features_at(panel, origin)).quantiles
    five = np.flatnonzero(rates[:, 0] == 5)
    week = HORIZONS.index(7)
    np.testing.assert_allclose(q[five, week, 1], 35.0, atol=1.0)  # 5 a day for 7 days
    np.testing.assert_allclose(q[five, HORIZONS.index(14), 1], 70.0, atol=2.0)
    assert all(n > 0 for n in model.training_pairs.values())

    noisy = panel_from_series(_series(_noisy_panel()))
    model.fit(noisy, origin)
    q = model.predict(features_at(noisy, origin)).quantiles
    assert np.isfinite(q).all() and (q >= 0).all()
    assert (np.diff(q, axis=-1) >= 0).all()  # p10 <= p50 <= p90
    busy, slow = q[20:25, week, 1].mean(), q[0:5, week, 1].mean()  # rates 5 and 0.5 per day
    assert busy > 3 * slow


def test_lightgbm_predicts_only_at_the_origin_it_was_fitted_at(lightgbm_anchor):
    from models.panel import features_at

    panel = panel_from_series(_series(_noisy_panel()))
    model = lightgbm_anchor()
    with pytest.raises(RuntimeError, match="fit"):
        model.predict(features_at(panel, D0 + 150))
    model.fit(panel, D0 + 150)
    with pytest.raises(ValueError, match="fitted at day"):
        model.predict(features_at(panel, D0 + 157))


class PanelSpy:
    """A forecaster fitted at each origin that records the panel it was given."""

    name, version, predicts_stages = "spy", "1", False

    def __init__(self):
        self.seen = []

    def fit(self, panel, origin_day):
        self.seen.append((origin_day, panel.last_day, float(panel.values[:, 3].max()), panel.first_sale_day.copy()))

    def predict(self, features):
        return WeeklyQuantiles().predict(features)


def test_the_backtest_fits_on_the_panel_cut_at_the_origin():
    units = np.tile(np.arange(1, 131), (2, 1)).astype(np.int64)  # the value tells the day it came from
    units[1, :100] = 0  # first sale after the first origin
    panel = panel_from_series(_series(units))
    spy = PanelSpy()
    origins = origin_days(D0 + 80, D0 + 129, 7)
    bt = run_backtest(panel, {"spy": spy}, origins, np.arange(2))
    assert [s[0] for s in spy.seen] == origins.tolist()
    for origin, last_day, top, first_sale in spy.seen:
        assert last_day == origin and top == origin - D0 + 1
        assert first_sale[1] == (D0 + 100 if origin >= D0 + 100 else -1)
    assert set(bt.fit_seconds) == {"spy"}


def test_poisoning_the_days_after_the_origin_does_not_change_the_lightgbm_forecast_there(lightgbm_anchor):
    units = _noisy_panel()
    origin = D0 + 170
    k = origin - D0  # index of the origin day
    poisoned = units.copy()
    poisoned[:, k + 1:] = 10_000  # every SKU, the never-selling one too, sells a fortune after the origin
    rows = np.arange(len(units))
    runs = {}
    for label, u in (("clean", units), ("poisoned", poisoned)):
        panel = panel_from_series(_series(u))
        # Fewer trees: leakage does not depend on the model's size.
        runs[label] = run_backtest(panel, {"lightgbm": lightgbm_anchor(trees=50)}, np.array([origin]), rows)
    clean, dirty = runs["clean"], runs["poisoned"]
    assert not np.array_equal(clean.targets, dirty.targets)  # the poison is real: the answers changed
    assert np.isfinite(clean.quantiles["lightgbm"]).all()
    np.testing.assert_array_equal(clean.quantiles["lightgbm"], dirty.quantiles["lightgbm"])


def test_panel_until_hides_later_days_and_later_first_sales():
    units = np.zeros((2, 20), dtype=np.int64)
    units[0, 0], units[0, 3], units[1, 15] = 1, 2, 4
    panel = panel_from_series(_series(units))
    cut = panel_until(panel, D0 + 10)
    assert cut.last_day == D0 + 10 and cut.values.shape[2] == 11
    assert cut.first_sale_day.tolist() == [D0, -1]
    assert panel.first_sale_day.tolist() == [D0, D0 + 15]  # the panel itself is untouched
    assert panel_until(panel, D0 - 5).values.shape[2] == 0
