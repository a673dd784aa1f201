import numpy as np
import pytest

from models.restock import lead_time_quantiles
from stream_app.core.decode import Invalid, decode_inventory
from stream_app.core.inventory import NOT_ALERTED, StockRules, decode, encode, low_cover, newer, replace_count, stock_view

HORIZONS = (1, 7, 14)


def test_lead_time_quantiles_are_exact_at_horizons_and_interpolated_between():
    q = np.array([[[1, 2, 3], [7, 14, 21], [14, 28, 42]]], dtype=float)
    np.testing.assert_allclose(lead_time_quantiles(q, HORIZONS, 7)[0], [7, 14, 21])
    np.testing.assert_allclose(lead_time_quantiles(q, HORIZONS, 10)[0], [10, 20, 30])
    np.testing.assert_allclose(lead_time_quantiles(q, HORIZONS, 4)[0], [4, 8, 12])
    with pytest.raises(ValueError, match="1..14"):
        lead_time_quantiles(q, HORIZONS, 15)


def test_counts_are_kept_newest_first_and_keep_the_alert_mark():
    r = encode(40.0, 1_000, 19_999)
    assert not newer(r, 999) and newer(r, 1_000) and newer(None, 0)
    assert decode(replace_count(r, 12.5, 2_000)) == (12.5, 2_000, 19_999)
    assert decode(replace_count(None, 3.0, 5)) == (3.0, 5, NOT_ALERTED)


def test_cover_reorder_and_one_low_cover_alert_per_shortage():
    rules = StockRules(lead_days=7, service_level=0.9, low_cover_days=7.0)
    lead = np.array([[5.0, 14.0, 28.0], [5.0, 14.0, 28.0], [0.0, 0.0, 0.0]])  # 2 units/day median
    records = [encode(6.0, 10), None, encode(50.0, 10)]
    view = stock_view(records, lead, rules)
    np.testing.assert_array_equal(view.rows, [0, 2])
    assert view.cover[0] == pytest.approx(3.0) and np.isinf(view.cover[1])
    assert view.reorder[0] == 22.0  # p90 of lead-time demand (28) minus 6 on hand, at service level 0.9
    assert view.reorder[1] == 0.0
    assert view.fields(1, 0.9)["days_of_cover"] is None  # no demand: never runs out

    growing = np.array([True, True, True])
    fire, mark = low_cover(view, growing, 20_000, rules)
    assert fire.tolist() == [True, False] and mark.tolist() == [20_000, NOT_ALERTED]
    # still short the next day: no second alert
    view2 = stock_view([encode(5.0, 11, 20_000), None, records[2]], lead, rules)
    fire, mark = low_cover(view2, growing, 20_001, rules)
    assert not fire.any() and mark[0] == 20_000
    # demand wobbles (cover above the limit today) on the same count: the alert stands
    calm = np.array([[5.0, 3.0, 28.0], [5.0, 14.0, 28.0], [0.0, 0.0, 0.0]])
    view3 = stock_view([encode(6.0, 10, 20_000), None, records[2]], calm, rules)
    assert view3.cover[0] > 7 and low_cover(view3, growing, 20_002, rules)[1][0] == 20_000
    # restocked (a count after the alert's day): the mark clears, a later shortage alerts again
    day_ms = 86_400_000
    view4 = stock_view([encode(100.0, 20_001 * day_ms, 20_000), None, records[2]], lead, rules)
    assert low_cover(view4, growing, 20_002, rules)[1][0] == NOT_ALERTED
    # short but not growing: no alert
    fire, _ = low_cover(view, np.array([False, True, True]), 20_000, rules)
    assert not fire.any()
    assert stock_view([None, None, None], lead, rules) is None


@pytest.mark.parametrize("value, code", [
    (b'{"sku": "A", "on_hand": -1, "ts": 5}', "bad_value"),
    (b'{"sku": "A", "on_hand": "3", "ts": 5}', "wrong_type"),
    (b'{"sku": "A", "ts": 5}', "missing_field"),
    (b'{"sku": "A", "on_hand": 3, "ts": 5.5}', "wrong_type"),
    (b'{"sku": "B", "on_hand": 3, "ts": 5}', "key_mismatch"),
    (b'[1]', "not_object"),
    (b'{"sku"', "bad_json"),
])
def test_bad_inventory_records_get_a_reason(value, code):
    got = decode_inventory(b"A", value)
    assert type(got) is Invalid and got.code == code


def test_a_good_inventory_record():
    assert decode_inventory(b"A", b'{"schema_version": 1, "sku": "A", "on_hand": 3, "ts": 5}') == (3.0, 5)
