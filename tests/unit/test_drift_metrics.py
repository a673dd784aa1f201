"""The drift evaluation's definitions on hand-made cases: alert matching and scores, recovery, coverage by offset."""

from __future__ import annotations


import numpy as np
import pytest

from stream_app.evaluation.dayloop import StageChanges
from stream_app.evaluation.drift_metrics import (RecoveryRules, aligned, alert_scores, days_to_recover, match,
                                                 rolling, true_changes)

I, G, M, D = range(4)  # introduction, growth, maturity, decline


def changes(*rows):
    """StageChanges from (row, day, previous, stage) tuples."""
    cols = list(zip(*rows)) if rows else [(), (), (), ()]
    return StageChanges(*(np.array(c, dtype=np.int64) for c in cols))


def test_true_changes_are_days_whose_stage_differs_from_the_day_before():
    stages = np.array([[-1, I], [I, I], [G, I], [G, -1], [M, G]])  # (days, skus); -1 before launch / unknown
    t = true_changes(stages, np.arange(100, 105))
    assert list(zip(t.rows.tolist(), t.days.tolist(), t.previous.tolist(), t.stage.tolist())) == [(0, 102, I, G),
                                                                                                (0, 104, G, M)]


def test_matching_takes_same_sku_same_stage_inside_the_window_once():
    truth = changes((0, 100, I, G), (0, 130, G, M), (1, 100, G, D))
    alerts = changes(
        (0, 98, I, G),    # 2 days early: detects the change of day 100
        (0, 103, I, G),   # a second alert to growth: the change is taken already -> false
        (0, 145, G, M),   # 15 days late: outside [-3, +14] -> false
        (1, 104, G, M),   # wrong stage -> false
        (1, 114, M, D),   # 14 days late: detects
        (2, 100, I, G),   # a SKU without true changes -> false
    )
    m = match(truth, alerts, early=3, late=14)
    assert m.tolist() == [0, -1, -1, -1, 2, -1]
    s = alert_scores(truth, alerts, m, first_day=90, last_day=160, sku_days=3 * 61, late=14)
    assert (s["alerts"], s["true_changes"], s["correct_alerts"], s["detected_changes"]) == (6, 3, 2, 2)
    assert s["precision"] == pytest.approx(2 / 6) and s["recall"] == pytest.approx(2 / 3)
    assert s["median_latency_days"] == pytest.approx(6.0)  # lags -2 and +14
    months = 3 * 61 / (365.25 / 12)
    assert s["false_alerts"] == 4 and s["false_alerts_per_100_sku_months"] == pytest.approx(100 * 4 / months)
    assert s["by_transition"]["growth -> maturity"] == {"true": 1, "detected": 0}
    assert s["alerts_by_new_stage"]["growth"] == {"alerts": 3, "correct": 1}


def test_scores_count_alerts_in_the_period_and_changes_whose_window_is_replayed():
    truth = changes((0, 100, I, G), (0, 150, G, M))  # the second is within 14 days of the end: not counted
    alerts = changes((0, 101, I, G), (0, 80, G, M))  # the second is before the period: not counted
    s = alert_scores(truth, alerts, match(truth, alerts, 3, 14), 90, 160, sku_days=71, late=14)
    assert (s["alerts"], s["true_changes"], s["precision"], s["recall"]) == (1, 1, 1.0, 1.0)
    assert s["median_latency_days"] == 1.0 and s["false_alerts"] == 0


def test_no_alerts_and_no_changes_give_none_not_a_crash():
    s = alert_scores(changes(), changes(), np.zeros(0, np.int64), 0, 30, sku_days=0, late=14)
    assert s["precision"] is None and s["recall"] is None and s["median_latency_days"] is None
    assert s["false_alerts_per_100_sku_months"] is None


def test_days_to_recover():
    r = RecoveryRules(window=1, hold=3, before=2, after=8)
    off = r.offsets  # -2 .. 7
    never_left = np.full(10, 0.8)
    assert days_to_recover(off, never_left, r) == 0
    dip = np.array([.8, .8, .3, .5, .7, .78, .82, .8, .6, .8])
    assert days_to_recover(off, dip, r) == 3  # offsets 3, 4, 5 are inside 0.75..0.85
    blip = np.array([.8, .8, .3, .8, .5, .8, .8, .1, .8, .8])  # never 3 in a row
    assert days_to_recover(off, blip, r) is None
    too_wide = np.array([.8, .8, .95, .95, .9, .86, .84, .85, .75, .6])  # above the band counts as out too
    assert days_to_recover(off, too_wide, r) == 4
    gap = np.array([.8, .8, .3, np.nan, .8, .8, .8, .8, .8, .8])  # no forecasts on an offset: not inside
    assert days_to_recover(off, gap, r) == 2


def test_rolling_coverage_pools_forecasts_not_days():
    assert rolling(np.array([0, 9, 1]), np.array([1, 10, 1]), 2).round(3).tolist() == [0.0, 0.818, 0.909]
    assert np.isnan(rolling(np.array([0, 0]), np.array([0, 0]), 3)).all()


def test_aligned_puts_each_sku_at_its_own_event_day():
    days = np.arange(50, 60)
    hit = np.zeros((10, 2), bool)
    valid = np.ones((10, 2), bool)
    hit[4, 0] = True  # SKU 0's forecast made on day 54: offset 55 - 55 = 0 for an event on day 55
    hit[1, 1] = True  # SKU 1's forecast made on day 51: offset 0 for an event on day 52
    valid[2, 1] = False  # not forecast on day 52
    h, n = aligned(hit, valid, days, np.array([0, 1]), np.array([55, 52]), np.array([-1, 0, 1, 8]))
    assert h.tolist() == [0, 2, 0, 0] and n.tolist() == [2, 2, 1, 1]  # offset 8: past the days for SKU 0 only
