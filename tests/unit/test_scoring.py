import json

import numpy as np
import pytest
import torch

from models.baselines import EwmaForecaster
from models.checkpoint import save_checkpoint
from models.fallback import GuardedForecaster
from models.interface import ForecastBatch
from models.network import TrendcastNet
from models.features import build_features
from stream_app.worker.metrics import Metrics
from stream_app.core.scorer import Scorer, embedding_is_current, embedding_record, text_features
from stream_app.worker.scoring import build_scorer
from stream_app.settings import Settings, SettingsError

CONFIG = {"history_days": 56, "hidden": 16, "conv_channels": 2, "text_dim": 2}


class NanRows:
    name, version = "net", "v9"

    def __init__(self, rows):
        self.rows = rows

    def predict(self, features):
        n = len(features)
        q = np.tile(np.array([1.0, 2.0, 3.0], np.float32), (n, 3, 1))
        q[self.rows, 0, 1] = np.nan
        return ForecastBatch(q, np.full((n, 4), 0.25, np.float32))


def _features(n=4):
    hist = np.ones((n, 6, 56), np.float32)
    return build_features(hist, 20_000, np.full(n, 19_950))


def _settings(**kw):
    return Settings(broker="kafka://127.0.0.1:9092", **kw)


def test_each_row_names_its_forecaster_and_fallbacks_are_counted_by_reason():
    m = Metrics.create()
    scorer = Scorer(GuardedForecaster(NanRows([2]), EwmaForecaster()), device="cpu", metrics=m)
    fb, models = scorer.score(_features())
    assert np.isfinite(fb.quantiles).all()
    assert models[0] == models[1] == models[3] == {"name": "net", "version": "v9"}
    assert models[2] == {"name": "baseline-ewma", "version": "1", "fallback_reason": "nan"}
    assert m.registry.get_sample_value("trendcast_model_fallbacks_total", {"reason": "nan"}) == 1
    assert m.registry.get_sample_value("trendcast_scoring_seconds_count", {"device": "cpu"}) == 1
    scorer.score(_features())
    assert m.registry.get_sample_value("trendcast_model_fallbacks_total", {"reason": "nan"}) == 2


def test_the_baseline_setting_scores_without_model_or_encoder():
    m = Metrics.create()
    scorer = build_scorer(_settings(forecaster="baseline"), m)
    assert scorer.model == ("baseline-ewma", "1") and scorer.encoder is None
    assert scorer.model_serving and scorer.serving == "baseline"  # the forecaster asked for serves
    _, models = scorer.score(_features(2))
    assert models == [{"name": "baseline-ewma", "version": "1"}] * 2
    assert m.registry.get_sample_value("trendcast_model_info",
                                       {"name": "baseline-ewma", "version": "1", "device": "cpu"}) == 1


def test_a_missing_checkpoint_leaves_the_baseline_forecasting_every_sku(tmp_path):
    m = Metrics.create()
    scorer = build_scorer(_settings(model_path=str(tmp_path / "none.pt"), device="cpu"), m)
    _, models = scorer.score(_features(3))
    assert models == [{"name": "baseline-ewma", "version": "1", "fallback_reason": "not_loaded"}] * 3
    assert not scorer.model_serving and scorer.serving == "baseline"  # /readyz says 503
    assert m.registry.get_sample_value("trendcast_model_fallbacks_total", {"reason": "not_loaded"}) == 3


def test_a_checkpoint_of_another_feature_spec_is_refused_in_one_line(tmp_path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, TrendcastNet(**CONFIG), CONFIG, {})
    blob = torch.load(path, weights_only=True)
    blob["meta"] = json.dumps({**json.loads(blob["meta"]), "feature_spec": 99})
    torch.save(blob, path)
    with pytest.raises(SettingsError) as err:
        build_scorer(_settings(model_path=str(path), device="cpu"))
    assert "\n" not in str(err.value) and "feature spec 99" in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_asking_for_cuda_without_a_gpu_is_a_settings_error():
    with pytest.raises(SettingsError, match="no CUDA device"):
        build_scorer(_settings(device="cuda"))


def test_embedding_records_stack_in_key_order_and_know_their_text():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(2, 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store = {b"a": embedding_record("mug", vecs[0]), b"c": embedding_record("lamp", vecs[1])}
    assert embedding_is_current(store[b"a"], "mug") and not embedding_is_current(store[b"a"], "mug, blue")
    assert not embedding_is_current(None, "mug")
    text, has = text_features([b"c", b"b", b"a"], store)
    np.testing.assert_array_equal(has, [True, False, True])
    assert float(text[0] @ vecs[1]) > 0.999 and float(text[2] @ vecs[0]) > 0.999
    assert not text[1].any()
    assert text_features([b"a"], None) is None


def test_the_model_scorer_runs_torch_on_the_configured_threads():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # what another test or torch's default may have left
        scorer = build_scorer(_settings(device="cpu", torch_threads=1))
        assert scorer.model[0] == "trendcast-net" and torch.get_num_threads() == 1
        assert scorer.model_serving and scorer.serving == "model"
    finally:
        torch.set_num_threads(before)


def test_the_background_encoder_waits_for_its_load_and_a_failed_load_says_why_once(caplog):
    import threading

    from stream_app.worker.scoring import BackgroundEncoder, EncoderUnavailable

    release = threading.Event()

    class Slow:
        def encode(self, texts):
            return np.ones((len(texts), 384), dtype=np.float32)

    def load():
        release.wait(5)
        return Slow()

    enc = BackgroundEncoder(load)
    assert not enc.wait(timeout=0.05)  # still loading: the worker goes on meanwhile
    release.set()
    assert enc.encode(["a", "b"]).shape == (2, 384)

    def broken():
        raise OSError("weights missing")

    bad = BackgroundEncoder(broken)
    with pytest.raises(EncoderUnavailable, match="weights missing"):
        bad.encode(["a"])
    with pytest.raises(EncoderUnavailable):
        bad.encode(["b"])
    assert sum("text encoder not loaded" in r.getMessage() for r in caplog.records) == 1
