"""The one feature function: the same arrays from window state, for training and the worker."""

import numpy as np
import pytest

from models.features import build_features
from stream_app.core.features import features_from_batch
from stream_app.core.windows import KIND_ORDER, StateBatch, WindowSpec, event_id_hash

DAY = 86_400_000


def test_features_of_a_state_batch_equal_build_features_on_the_windows_series():
    spec = WindowSpec(history_days=21)
    windows = []
    for s in range(3):
        w = spec.new(0)
        for i in range(10 * (s + 1)):
            w.apply(KIND_ORDER, i, (20_000 + i % 15) * DAY + 5, 1 + s, 2.0, False, event_id_hash(f"{s}-{i}"))
        windows.append(w)
    as_of = 20_014
    fb = features_from_batch(StateBatch(bytearray(b"".join(bytes(w.buf) for w in windows)), spec), as_of)
    ref = build_features(np.stack([w.series(as_of) for w in windows]), as_of,
                         np.array([w.first_sale_day for w in windows]))
    np.testing.assert_array_equal(fb.history, ref.history)
    assert fb.history.shape == (3, 6, 21) and fb.history.dtype == np.float32
    assert fb.days_since_first_sale.tolist() == [14, 14, 14]
    assert fb.as_of_weekday.tolist() == [(as_of + 3) % 7] * 3  # 1970-01-01 was a Thursday
    assert fb.history[:, 3].sum() == sum(w.totals()["units"] for w in windows)
    assert fb.history[:, 5].sum() == sum(w.totals()["order_lines"] for w in windows) == 10 + 20 + 30


def test_sku_that_never_sold_has_age_minus_one_and_bad_shapes_are_refused():
    fb = build_features(np.zeros((2, 6, 7)), 100, np.array([-1, 90]))
    assert fb.days_since_first_sale.tolist() == [-1, 10]
    with pytest.raises(ValueError, match="shape"):
        build_features(np.zeros((2, 5, 7)), 100, np.array([-1, -1]))  # without order lines
