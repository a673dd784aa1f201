"""What consumers hold at each origin: the newest published forecast per SKU, with its age."""

import numpy as np

from stream_app.evaluation.published import NONE, by_age, every_sku_held, held


def message(sku, p50):
    return {"sku": sku, "horizons": {h: {"p10": 0.5 * p50 * int(h), "p50": p50 * int(h), "p90": 2 * p50 * int(h)}
                                     for h in ("1", "7", "14")}}


def test_the_newest_forecast_on_or_before_each_origin_is_held_with_its_age():
    by_day = {100: [message("a", 1.0), message("b", 2.0)], 103: [message("a", 3.0)], 110: [message("c", 5.0)]}
    quantiles, ages = held(by_day, ["a", "b", "c"], np.array([102, 105, 110]))
    assert ages.tolist() == [[2, 2, NONE], [2, 5, NONE], [7, 10, 0]]
    assert quantiles[0, 0, 1].tolist() == [3.5, 7.0, 14.0]  # a's day-100 forecast, 7 days
    assert quantiles[1, 0, 1, 1] == 21.0  # a's day-103 forecast replaced it
    assert quantiles[0, 2].sum() == 0.0  # c holds nothing yet


def test_scores_by_age_bucket_include_the_skus_that_hold_nothing():
    quantiles = np.zeros((1, 3, 3, 3))
    quantiles[0, 0, 1] = [5.0, 10.0, 20.0]
    quantiles[0, 1, 1] = [5.0, 10.0, 20.0]
    ages = np.array([[0, 9, NONE]])
    targets = np.full((1, 3, 3), np.nan)
    targets[0, :, 1] = [10.0, 30.0, 4.0]
    rows = {r["age_days"]: r for r in by_age(quantiles, ages, targets, 7)}
    assert rows["0"] == {"age_days": "0", "pairs": 1, "units": 10.0, "wape": 0.0, "coverage": 1.0}
    assert rows["8-14"]["wape"] == 20.0 / 30.0 and rows["8-14"]["coverage"] == 0.0
    assert rows["none held"]["pairs"] == 1 and rows["none held"]["wape"] == 1.0


def test_every_sku_held_scores_the_skus_that_sold_nothing_and_leaves_out_those_holding_none():
    quantiles = np.zeros((1, 3, 3, 3))
    quantiles[0, 0, 1] = [5.0, 10.0, 20.0]  # sold 10: covered
    quantiles[0, 1, 1] = [0.0, 0.0, 2.0]  # sold nothing: covered, no error
    ages = np.array([[0, 3, NONE]])
    targets = np.zeros((1, 3, 3))
    targets[0, :, 1] = [10.0, 0.0, 50.0]  # the third holds nothing: not a pair
    s = every_sku_held(quantiles, ages, targets)["7"]
    assert s == {"pairs": 2, "zero_share": 0.5, "wape": 0.0, "coverage": 1.0, "width": 17.0 / 10.0}
