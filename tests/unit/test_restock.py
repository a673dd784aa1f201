import numpy as np
import pytest

from models.restock import days_of_cover, demand_quantile, reorder_quantity


def test_the_three_given_quantiles_are_reproduced():
    p10, p50, p90 = np.array([2.0, 0.0, 40.0]), np.array([5.0, 1.0, 100.0]), np.array([9.0, 4.0, 400.0])
    for level, want in ((0.1, p10), (0.5, p50), (0.9, p90)):
        np.testing.assert_allclose(demand_quantile(p10, p50, p90, level), want, rtol=1e-9, atol=1e-9)


def test_quantiles_grow_with_the_level_and_keep_the_right_tail():
    levels = [0.05, 0.2, 0.5, 0.8, 0.95, 0.99]
    q = [float(demand_quantile(10.0, 20.0, 60.0, lv)) for lv in levels]
    assert q == sorted(q)
    # A right-skewed interval (p90 - p50 > p50 - p10) gives a tail further out than a symmetric one.
    assert demand_quantile(10.0, 20.0, 60.0, 0.99) > demand_quantile(10.0, 20.0, 30.0, 0.99)


def test_a_lognormal_demand_is_recovered():
    rng = np.random.default_rng(0)
    draws = np.expm1(rng.normal(3.0, 0.6, size=200_000))
    p10, p50, p90 = np.quantile(draws, [0.1, 0.5, 0.9])
    for level in (0.7, 0.95, 0.99):
        assert demand_quantile(p10, p50, p90, level) == pytest.approx(np.quantile(draws, level), rel=0.03)


def test_days_of_cover_and_reorder():
    cover = days_of_cover(np.array([70.0, 5.0, 3.0]), np.array([70.0, 0.0, 14.0]), days=7)
    assert cover.tolist() == [7.0, float("inf"), 1.5]
    order = reorder_quantity(np.array([0.0, 500.0]), 10.0, 20.0, 60.0, 0.95)
    assert order[0] == np.ceil(demand_quantile(10.0, 20.0, 60.0, 0.95)) and order[1] == 0.0


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5])
def test_a_service_level_outside_0_1_is_refused(level):
    with pytest.raises(ValueError, match="service level"):
        demand_quantile(1.0, 2.0, 3.0, level)
