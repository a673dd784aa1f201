"""Backtest scores on arrays small enough to check by hand, expected values derived from the definitions."""

import numpy as np
import pytest

from stream_app.evaluation.scores import coverage, macro_f1, mase, naive_scale, pinball, relative_width, wape


def test_wape_is_total_absolute_error_over_total_units():
    y = np.array([4.0, 0.0, 6.0])
    p = np.array([3.0, 2.0, 6.0])
    assert wape(y, p) == pytest.approx((1 + 2 + 0) / (4 + 0 + 6))
    assert wape(y, y) == 0.0
    assert np.isnan(wape(np.zeros(3), p))  # no units: undefined, not zero


def test_naive_scale_is_mean_absolute_weekly_difference():
    week = np.array([1.0, 0, 2, 0, 3, 0, 4])
    row = np.concatenate([week, week + 1.0])  # every day is 1 above its weekday of the week before
    flat = np.full(14, 5.0)
    assert naive_scale(np.stack([row, flat])).tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="more than 7 days"):
        naive_scale(np.zeros((1, 7)))


def test_mase_divides_by_horizon_times_daily_scale_and_leaves_out_zero_scales():
    y = np.array([10.0, 4.0, 3.0])
    p50 = np.array([7.0, 8.0, 1.0])
    scale = np.array([0.5, 2.0, 0.0])
    value, left_out = mase(y, p50, scale, horizon=7)
    assert value == pytest.approx(np.mean([3 / (7 * 0.5), 4 / (7 * 2.0)]))
    assert left_out == 1
    value, left_out = mase(y[2:], p50[2:], scale[2:], horizon=7)
    assert np.isnan(value) and left_out == 1


def test_pinball_penalises_under_forecasts_by_tau_and_over_forecasts_by_one_minus_tau():
    y = np.array([10.0, 10.0])
    q = np.array([[8.0, 10.0, 13.0], [12.0, 12.0, 12.0]])
    loss = pinball(y, q, (0.1, 0.5, 0.9))
    expected = [[0.1 * 2, 0.0, (1 - 0.9) * 3], [(1 - 0.1) * 2, (1 - 0.5) * 2, (1 - 0.9) * 2]]
    np.testing.assert_allclose(loss, expected)
    # The median's pinball loss is half the absolute error.
    assert loss[:, 1].tolist() == pytest.approx((0.5 * np.abs(y - q[:, 1])).tolist())


def test_coverage_counts_actuals_inside_the_interval_ends_included():
    y = np.array([0.0, 5.0, 9.0, 12.0])
    lo = np.array([0.0, 6.0, 2.0, 2.0])
    hi = np.array([3.0, 8.0, 9.0, 11.0])
    assert coverage(y, lo, hi) == pytest.approx(2 / 4)


def test_macro_f1_averages_per_class_f1_over_classes_seen():
    truth = np.array([0, 0, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0])
    f1, per = macro_f1(truth, pred, 4)
    # class 0: tp 1, fp 1, fn 1; class 1: tp 2, fp 1, fn 0; class 2: tp 0, fn 1; class 3 absent.
    expected = [2 * 1 / (2 + 1 + 1), 2 * 2 / (4 + 1 + 0), 0.0]
    assert per[:3] == pytest.approx(expected) and np.isnan(per[3])
    assert f1 == pytest.approx(np.mean(expected))
    assert macro_f1(truth, truth, 4)[0] == 1.0


def test_relative_width_is_total_interval_width_over_total_units():
    y = np.array([4.0, 0.0, 6.0])
    assert relative_width(y, np.array([2.0, 0.0, 5.0]), np.array([6.0, 1.0, 5.0])) == pytest.approx((4 + 1 + 0) / 10)
    assert np.isnan(relative_width(np.zeros(2), np.zeros(2), np.ones(2)))  # no units: undefined
