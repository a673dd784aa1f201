import numpy as np
import pytest
import torch

from models.checkpoint import CheckpointError, read_meta, save_checkpoint
from models.neural import DEFAULT_CHECKPOINT, load_forecaster
from models.network import TrendcastNet
from models.layout import FEATURE_SPEC_VERSION
from models.features import build_features

CONFIG = {"history_days": 56, "hidden": 32, "conv_channels": 4, "text_dim": 4}


def _features(n=5, days=56):
    rng = np.random.default_rng(1)
    hist = rng.poisson(3.0, size=(n, 6, days)).astype(np.float32)
    text = rng.normal(size=(n, 384)).astype(np.float32)
    return build_features(hist, 19_000, np.full(n, 18_900), text / np.linalg.norm(text, axis=1, keepdims=True),
                          np.array([True, False, True, True, False])[:n])


def test_round_trip_gives_the_same_forecasts(tmp_path):
    torch.manual_seed(3)
    net = TrendcastNet(**CONFIG)
    cid = save_checkpoint(tmp_path / "m.pt", net, CONFIG, {"metrics": {"wape7": 0.5}})
    f = load_forecaster(tmp_path / "m.pt", device="cpu")
    assert f.version == cid and f.name == "trendcast-net" and f.device == "cpu"
    meta = read_meta(tmp_path / "m.pt")
    assert meta["feature_spec"] == FEATURE_SPEC_VERSION and meta["metrics"] == {"wape7": 0.5}
    out = f.predict(_features())
    with torch.inference_mode():
        fb = _features()
        expected, _, _ = net.eval()(torch.from_numpy(fb.history), torch.from_numpy(fb.days_since_first_sale),
                                    torch.from_numpy(fb.as_of_weekday), torch.from_numpy(fb.text),
                                    torch.from_numpy(fb.has_text))
    np.testing.assert_allclose(out.quantiles, expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(out.stage_probs.sum(axis=1), 1.0, atol=1e-5)
    # other window lengths: cut or padded to the network's 56 days
    assert f.predict(_features(days=90)).quantiles.shape == (5, 3, 3)
    assert f.predict(_features(days=28)).quantiles.shape == (5, 3, 3)


def test_a_checkpoint_of_another_feature_spec_is_refused_with_one_clear_line(tmp_path, monkeypatch):
    import models.checkpoint as ckpt

    monkeypatch.setattr(ckpt, "FEATURE_SPEC_VERSION", FEATURE_SPEC_VERSION + 1)
    save_checkpoint(tmp_path / "old.pt", TrendcastNet(**CONFIG), CONFIG, {})
    monkeypatch.undo()
    with pytest.raises(CheckpointError) as err:
        load_forecaster(tmp_path / "old.pt")
    msg = str(err.value)
    assert "\n" not in msg
    assert f"feature spec {FEATURE_SPEC_VERSION + 1}" in msg and f"builds spec {FEATURE_SPEC_VERSION}" in msg
    assert "trendcast train" in msg


def test_missing_and_corrupt_files_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_forecaster(tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_forecaster(tmp_path / "bad.pt")


def test_the_default_checkpoint_loads_and_is_small():
    assert DEFAULT_CHECKPOINT.stat().st_size < 10 * 2**20
    f = load_forecaster(device="cpu")
    q = f.predict(_features()).quantiles
    assert np.all(np.isfinite(q)) and np.all(np.diff(q, axis=2) >= 0)


def test_an_ensemble_round_trips_as_one_checkpoint(tmp_path):
    from models.network import TrendcastEnsemble

    torch.manual_seed(4)
    config = {**CONFIG, "channels": 6, "members": 3}
    ens = TrendcastEnsemble(**config).eval()
    save_checkpoint(tmp_path / "e.pt", ens, config, {})
    f = load_forecaster(tmp_path / "e.pt", device="cpu")
    assert isinstance(f.model, TrendcastEnsemble) and len(f.model.nets) == 3
    fb = _features()
    with torch.inference_mode():
        expected, _, _ = ens(torch.from_numpy(fb.history), torch.from_numpy(fb.days_since_first_sale),
                             torch.from_numpy(fb.as_of_weekday), torch.from_numpy(fb.text),
                             torch.from_numpy(fb.has_text))
    np.testing.assert_allclose(f.predict(fb).quantiles, expected.numpy(), rtol=1e-6)
