"""Launch demand from text: launch totals, the reference of earlier launches, nearest-text quantiles, no leakage."""

from __future__ import annotations

import numpy as np
import pytest

from models.launch_prior import LAUNCHED_AFTER, LaunchReference, launch_rows, launch_totals
from stream_app.evaluation.cold_starts import cold_start_forecasts


def unit_rows(n, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, 384)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_launch_totals_sum_the_first_days_and_leave_open_windows_unknown():
    units = np.array([[0, 2, 1, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 5, 9],
                      [0] * 8 + [4, 1, 0, 0, 0, 0, 0, 2],
                      [0] * 16], dtype=float)
    t = launch_totals(units, np.array([1, 8, -1]))
    assert t[0].tolist() == [2, 6, 11]  # day 1; days 1-7; days 1-14 (day 15's 9 is the 15th day)
    assert t[1, 0] == 4 and t[1, 1] == 5 and np.isnan(t[1, 2])  # 7 days from column 8 end on 14; 14 days run past the data
    assert np.isnan(t[2]).all()


def test_the_reference_holds_only_launches_closed_by_the_day_with_text_and_after_the_data_began():
    units = np.zeros((4, 60))
    first = np.array([2, 20, 30, 45])  # a product older than the data; two launches; one not closed at day 50
    units[np.arange(4), first] = [5, 7, 9, 11]
    has_text = np.array([True, True, False, True])
    rows, totals = launch_rows(units, first, has_text, day_index=50, launched_after=LAUNCHED_AFTER)
    assert rows.tolist() == [1]  # row 2 has no text, row 3 closes on day 58
    assert totals.tolist() == [[7, 7, 7]]
    # what happens after the day is not known: a later sale of row 1 changes nothing
    later = units.copy()
    later[1, 51:] = 100
    assert launch_rows(later, first, has_text, 50, LAUNCHED_AFTER)[1].tolist() == [[7, 7, 7]]


def test_nearest_texts_set_the_quantiles_and_no_text_gives_those_of_all_launches():
    text = unit_rows(40)
    totals = np.repeat(np.where(np.arange(40) < 20, 1.0, 100.0)[:, None], 3, axis=1)  # 20 slow, 20 fast launches
    ref = LaunchReference(text=text, totals=totals)
    near_fast = text[20:].mean(axis=0)  # closest to the fast ones
    near_fast /= np.linalg.norm(near_fast)
    near_slow = text[:20].mean(axis=0)
    near_slow /= np.linalg.norm(near_slow)
    q = ref.quantiles(np.stack([near_fast, near_slow]), k=10, prior=1.0)
    assert q.shape == (2, 3, 3)
    assert q[0, 1, 1] == 100 and q[1, 1, 1] == 1
    assert np.all(np.diff(q, axis=2) >= 0)
    everyone = ref.quantiles(None)
    assert everyone.shape == (1, 3, 3)
    np.testing.assert_array_equal(everyone[0, 1], np.quantile(totals[:, 1], [0.1, 0.5, 0.9], method="inverted_cdf"))
    with pytest.raises(ValueError, match="no earlier launch"):
        LaunchReference(text=text[:0], totals=totals[:0]).quantiles(None)


def test_a_launch_is_forecast_from_what_was_known_the_day_before_it():
    rng = np.random.default_rng(3)
    n, days = 80, 120
    first = np.sort(rng.integers(LAUNCHED_AFTER, 100, size=n))
    units = np.zeros((n, days))
    for i, f in enumerate(first):
        units[i, f:] = rng.poisson(rng.uniform(0.2, 5), size=days - f)
    text = unit_rows(n, seed=4)
    has_text = np.ones(n, dtype=bool)
    rows, q, targets = cold_start_forecasts(units, first, has_text, {"frozen": text}, lo=80, hi=100)
    assert len(rows) > 0 and set(q) == {"no_text", "frozen"}
    for i, row in enumerate(rows):
        day = first[row]
        known, totals = launch_rows(units, first, has_text, day - 1, LAUNCHED_AFTER)
        ref = LaunchReference(text[known], totals)
        np.testing.assert_array_equal(q["frozen"][i], ref.quantiles(text[row][None])[0])
        np.testing.assert_array_equal(q["no_text"][i], ref.quantiles(None)[0])
        np.testing.assert_array_equal(targets[i], launch_totals(units, first)[row])
    # rewriting every day from the first scored launch on changes its targets, never its forecast
    changed = units.copy()
    changed[:, first[rows[0]]:] *= 3
    _, q2, t2 = cold_start_forecasts(changed, first, has_text, {"frozen": text}, lo=80, hi=int(first[rows[0]]))
    np.testing.assert_array_equal(q2["frozen"][0], q["frozen"][0])
    assert not np.array_equal(t2[0], targets[0])
