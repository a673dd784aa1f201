import numpy as np

from models.panel import features_at, targets_at
from stream_app.data.samples import catalog_texts, panel_from_series
from stream_app.data.eventfiles import TopicFiles
from models.layout import FEATURE_SPEC_VERSION
from stream_app.data.offline import DailySeries


def _series():
    # SKU a sells on days 100 (2 units) and 103 (5); b only clicks on day 101.
    return DailySeries(
        skus=("a", "b"),
        sku=np.array([0, 0, 1]),
        day=np.array([100, 103, 101]),
        counts=np.array([[1, 0, 0, 2, 1], [0, 1, 0, 5, 2], [4, 0, 0, 0, 0]]),
        revenue=np.array([20.0, 50.0, 0.0]),
        dropped={},
    )


def test_panel_is_dense_with_first_sales_and_text():
    vec = np.zeros(384, np.float32); vec[0] = 1.0
    p = panel_from_series(_series(), {"a": vec})
    assert p.values.shape == (2, 6, 4) and p.first_day == 100 and p.last_day == 103
    np.testing.assert_array_equal(p.values[0, 3], [2, 0, 0, 5])
    np.testing.assert_array_equal(p.values[0, 4], [20, 0, 0, 50])  # revenue
    np.testing.assert_array_equal(p.values[0, 5], [1, 0, 0, 2])  # order lines
    np.testing.assert_array_equal(p.first_sale_day, [100, -1])
    np.testing.assert_array_equal(p.has_text, [True, False])
    assert p.text[0, 0] == 1.0 and not p.text[1].any()
    assert p.has_funnel


def test_features_at_pads_before_the_panel_and_hides_future_sales():
    p = panel_from_series(_series())
    f = features_at(p, 101, history_days=5)
    assert f.spec_version == FEATURE_SPEC_VERSION and f.as_of_day == 101
    np.testing.assert_array_equal(f.history[0, 3], [0, 0, 0, 2, 0])
    np.testing.assert_array_equal(f.days_since_first_sale, [1, -1])
    f = features_at(p, 99, history_days=3, rows=np.array([0]))
    assert len(f) == 1 and not f.history.any() and f.days_since_first_sale[0] == -1


def test_targets_sum_the_days_after_the_origin_and_are_nan_past_the_panel():
    p = panel_from_series(_series())
    t = targets_at(p, 100)
    np.testing.assert_array_equal(t[:, 0], [0, 0])
    assert np.isnan(t[:, 1:]).all()
    p = panel_from_series(DailySeries(("a",), np.zeros(20, int), np.arange(20), np.ones((20, 5), int),
                                      np.ones(20), {}))
    np.testing.assert_array_equal(targets_at(p, 2)[0], [1, 7, 14])
    assert np.isnan(targets_at(p, 6)[0, 2]) and targets_at(p, 6)[0, 1] == 7


def test_catalog_texts_keep_the_last_record(tmp_path):
    with TopicFiles(tmp_path) as files:
        files.write("catalog", {"sku": "a", "title": "Mug", "description": "", "category": "unknown"})
        files.write("catalog", {"sku": "a", "title": "Red mug", "description": "", "category": "kitchen"})
        files.write("orders", {"sku": "a"})
    assert catalog_texts(tmp_path) == {"a": "Red mug. category: kitchen"}
