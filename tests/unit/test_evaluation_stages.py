"""The stage consistency table and stage-alert precision read what consumers hold, against the sales."""

from __future__ import annotations

import numpy as np

from stream_app.evaluation.stages import alert_precision, consistency, held_stages, stage_changes

DAY0 = 1000


def msg(sku: str, stage: str) -> dict:
    return {"sku": sku, "stage": stage}


def test_held_stage_is_the_newest_on_or_before_each_origin_and_changes_are_alerts():
    by_day = {1010: [msg("a", "growth"), msg("b", "maturity")], 1012: [msg("a", "decline")],
              1015: [msg("a", "decline"), msg("b", "growth")]}
    held = held_stages(by_day, ["a", "b", "c"], np.array([1009, 1011, 1014, 1015]))
    assert held.tolist() == [[-1, -1, -1], [1, 2, -1], [3, 2, -1], [3, 1, -1]]
    assert stage_changes(by_day, ["a", "b"], 1000, 1020) == [(0, 1012, 3), (1, 1015, 1)]
    assert stage_changes(by_day, ["a", "b"], 1013, 1020) == [(1, 1015, 1)]


def test_consistency_reads_the_sales_of_each_stage():
    days = 60
    units = np.zeros((3, days))
    units[0, 4:32], units[0, 32:] = 10, 2      # falling: ratio 56/280
    units[1, 4:32], units[1, 32:] = 2, 10      # growing: ratio 280/56
    units[2, 50:] = 1                          # new: nothing before
    first_sale = np.array([DAY0 + 4, DAY0 + 4, DAY0 + 50])
    origin = DAY0 + days - 1
    stages = np.array([[3, 3, 0]])  # the second SKU wrongly called decline
    t = consistency(stages, units, DAY0, first_sale, np.array([origin]))
    assert t["decline"]["pairs"] == 2 and t["decline"]["share"] == 2 / 3
    assert t["decline"]["share_growing_25pct"] == 0.5
    assert t["decline"]["median_ratio_28d"] == np.median([56 / 280, 280 / 56])
    assert t["introduction"]["median_age_days"] == 9 and t["introduction"]["median_ratio_28d"] == np.inf
    assert t["growth"]["pairs"] == 0 and t["growth"]["share_growing_25pct"] is None


def test_alert_precision_against_hindsight_labels():
    labels = np.full((2, 30), 2)
    labels[0, 10:] = 3
    labels[1, :5] = -1
    got = alert_precision([(0, DAY0 + 12, 3), (1, DAY0 + 12, 3), (1, DAY0 + 2, 1)], labels, DAY0)
    assert got["alerts"] == 3 and got["labelled"] == 2 and got["precision"] == 0.5
    assert got["per_stage"]["decline"] == {"alerts": 2, "precision": 0.5}
