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


def test_launch_forecasts_are_scored_against_the_days_after_them_and_retirements_and_others_left_out():
    from stream_app.evaluation.published import launch_scores

    def launch(sku, p50, active=True):
        return {**message(sku, p50), "cold_start": True, "active": active}

    units = np.zeros((3, 40))  # days 100..139
    units[0, 11:25] = 2.0  # "a" sells 2 a day from day 111, the day after its launch forecast
    by_day = {110: [launch("a", 2.0), launch("b", 1.0), message("c", 9.0)],  # c: the model's, not a launch
              111: [launch("b", 0.0, active=False)],  # a retirement
              130: [launch("c", 1.0)]}  # its 14 days run past the period
    scores = launch_scores(by_day, ["a", "b", "c"], units, 100, 105, 135)
    assert {h: s["forecasts"] for h, s in scores.items()} == {"1": 2, "7": 2, "14": 2}
    # a launch with no event in the data at all sold nothing
    with_silent = launch_scores({**by_day, 112: [launch("z", 1.0)]}, ["a", "b", "c"], units, 100, 105, 135)
    assert with_silent["7"]["forecasts"] == 3 and with_silent["7"]["units"] == 14.0
    assert with_silent["7"]["wape"] == 14.0 / 14.0
    # a: p50 2/14/28 against 2/14/28 sold; b: p50 1/7/14 against nothing
    assert scores["7"]["units"] == 14.0 and scores["7"]["wape"] == 7.0 / 14.0 and scores["7"]["zero_share"] == 0.5
    assert scores["14"]["coverage"] == 0.5  # b's interval 7-28 misses its 0
    assert launch_scores({110: [message("c", 1.0)]}, ["c"], units, 100, 105, 135) is None
