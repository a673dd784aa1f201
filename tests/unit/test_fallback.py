import numpy as np

from models.baselines import EwmaForecaster
from models.fallback import GuardedForecaster
from models.interface import ForecastBatch
from models.features import build_features


class Broken:
    """A model that returns NaN for the rows in ``nan_rows`` (or raises)."""

    name, version = "net", "v1"

    def __init__(self, nan_rows=(), raises=False):
        self.nan_rows, self.raises = list(nan_rows), raises

    def predict(self, features):
        if self.raises:
            raise RuntimeError("boom")
        n = len(features)
        q = np.tile(np.array([1.0, 2.0, 3.0], np.float32), (n, 3, 1))
        p = np.full((n, 4), 0.25, np.float32)
        q[self.nan_rows, 1, 1] = np.nan
        return ForecastBatch(q, p)


def _features(n=4):
    hist = np.zeros((n, 6, 28), np.float32)
    hist[:, 3] = np.arange(n)[:, None] + 1.0
    return build_features(hist, 20_000, np.full(n, 19_990))


def test_nan_rows_come_from_the_baseline_and_are_named_so():
    base = EwmaForecaster()
    g = GuardedForecaster(Broken(nan_rows=[1, 3]), base)
    out = g.predict(_features())
    expected = base.predict(_features())
    np.testing.assert_array_equal(out.fallback, [False, True, False, True])
    assert out.fallback_reason == "nan"
    np.testing.assert_allclose(out.quantiles[[1, 3]], expected.quantiles[[1, 3]])
    np.testing.assert_allclose(out.quantiles[0, 0], [1, 2, 3])
    assert np.isfinite(out.quantiles).all()
    names = g.model_fields(out)
    assert names[0] == {"name": "net", "version": "v1"}
    assert names[1] == {"name": base.name, "version": base.version, "fallback_reason": "nan"}
    assert names[1] is names[3] and names[0] is names[2]  # shared dicts, one per kind


def test_clean_batches_do_not_fall_back():
    g = GuardedForecaster(Broken(), EwmaForecaster())
    out = g.predict(_features())
    assert not out.fallback.any() and out.fallback_reason is None
    assert g.model_fields(out) == [{"name": "net", "version": "v1"}] * 4


def test_a_raising_or_missing_model_falls_back_entirely():
    base = EwmaForecaster()
    for g, reason in ((GuardedForecaster(Broken(raises=True), base), "error"),
                      (GuardedForecaster(None, base, load_error="no checkpoint"), "not_loaded")):
        out = g.predict(_features())
        assert out.fallback_reason == reason and out.fallback.all()
        np.testing.assert_allclose(out.quantiles, base.predict(_features()).quantiles)
        assert {(m["name"], m["fallback_reason"]) for m in g.model_fields(out)} == {(base.name, reason)}
