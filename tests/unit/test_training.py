import json
import subprocess
import sys
from dataclasses import replace
from datetime import date

import numpy as np
import pytest
import torch

from models.checkpoint import read_meta
from models.neural import load_forecaster
from models.panel import features_at
from stream_app.data.trainset import build_samples, load_dataset, split_days
from models.training import TrainConfig, predict, train, validation_loss
from stream_app.cli.traincli import TrainRequest, run_train
from stream_app.requests import BadRequest

TINY = {"history_days": 28, "hidden": 32, "conv_channels": 8, "text_dim": 8}


@pytest.fixture(scope="module")
def simulated(simulate):
    return simulate(80, 110, 11, 400)


def test_a_tiny_training_run_reduces_the_validation_loss(simulated):
    data = load_dataset(simulated, "events")
    assert data.stages is not None  # the simulator's truth from labels.csv
    tu, vu = split_days(data.panel, None, None)
    tr = build_samples(data, data.panel.first_day + 6, tu, history_days=28)
    va = build_samples(data, tu, vu, history_days=28)
    # no leakage: every training target ends by the split day, validation origins start there
    assert tr.origin.max() + 14 <= tu and va.origin.min() >= tu
    cfg = TrainConfig(epochs=6, batch_size=256, lr=3e-3, patience=6, model=TINY)
    torch.manual_seed(cfg.seed)
    from models.network import TrendcastNet

    before = validation_loss(TrendcastNet(**TINY), [va], cfg)
    model, history = train([tr], [va], cfg)
    assert history["best_valid_loss"] < 0.8 * before
    assert validation_loss(model, [va], cfg) == pytest.approx(history["best_valid_loss"], rel=1e-5)


def test_train_writes_a_checkpoint_the_worker_can_load(simulated, tmp_path):
    out = tmp_path / "m.pt"
    req = TrainRequest(data=[simulated], source="auto", out=out, train_until=None, valid_until=None,
                       overrides={"epochs": 1, "model": TINY}, device="cpu")
    lines = run_train(req)
    assert lines[0].startswith(f"wrote {out}") and "WAPE@7 model" in lines[1]
    meta = read_meta(out)
    assert json.loads(out.with_suffix(".json").read_text())["id"] == meta["id"]
    assert meta["datasets"][simulated.name]["stage_truth"] == "simulator"
    assert len(meta["data_fingerprint"]) == 16 and meta["metrics"][simulated.name]["samples"] > 0
    f = load_forecaster(out, device="cpu")
    data = load_dataset(simulated, "events")
    fb = f.predict(features_at(data.panel, data.panel.last_day, 56))
    assert fb.quantiles.shape == (len(data.panel.skus), 3, 3)


def test_members_train_into_one_ensemble_checkpoint(simulated, tmp_path):
    out = tmp_path / "e.pt"
    req = TrainRequest(data=[simulated], source="auto", out=out, train_until=None, valid_until=None,
                       overrides={"epochs": 1, "members": 2, "model": {**TINY, "channels": 6}}, device="cpu")
    lines = run_train(req)
    assert lines[0].startswith(f"wrote {out}") and "after 2 epochs" in lines[0]
    meta = read_meta(out)
    assert len(meta["training"]["members"]) == 2 and meta["training"]["config"]["members"] == 2
    f = load_forecaster(out, device="cpu")
    assert len(f.model.nets) == 2
    data = load_dataset(simulated, "events")
    assert np.isfinite(f.predict(features_at(data.panel, data.panel.last_day, 56)).quantiles).all()


def test_a_distilled_network_follows_its_teacher(simulated):
    data = load_dataset(simulated, "events")
    tu, vu = split_days(data.panel, None, None)
    tr = build_samples(data, data.panel.first_day + 6, tu, history_days=28)
    va = build_samples(data, tu, vu, history_days=28)
    cfg = TrainConfig(epochs=4, batch_size=256, lr=3e-3, patience=4, model=TINY)
    plain, _ = train([tr], [va], cfg)
    # A teacher that forecasts twice what the plain network does: a student pulled towards it forecasts more.
    teacher = [2.0 * predict(plain, tr)[0]]
    student, _ = train([tr], [va], replace(cfg, distill_weight=5.0), teacher=teacher)
    p50_plain, p50_student = predict(plain, va)[0][:, :, 1].sum(), predict(student, va)[0][:, :, 1].sum()
    assert p50_student > 1.3 * p50_plain
    same, _ = train([tr], [va], replace(cfg, distill_weight=0.0), teacher=teacher)
    assert np.allclose(predict(same, va)[0], predict(plain, va)[0])  # weight 0: the teacher changes nothing


def test_train_with_a_teacher_records_it(simulated, tmp_path):
    teacher = tmp_path / "t.pt"
    run_train(TrainRequest(data=[simulated], source="auto", out=teacher, train_until=None, valid_until=None,
                           overrides={"epochs": 1, "model": TINY}, device="cpu"))
    out = tmp_path / "s.pt"
    lines = run_train(TrainRequest(data=[simulated], source="auto", out=out, train_until=None, valid_until=None,
                                   overrides={"epochs": 1, "model": TINY}, device="cpu", teacher=teacher))
    assert lines[0].startswith(f"wrote {out}")
    assert read_meta(out)["training"]["teacher"] == read_meta(teacher)["id"]
    with pytest.raises(BadRequest, match="a teacher of the same days"):  # 28 days of history, the default 56
        run_train(TrainRequest(data=[simulated], source="auto", out=tmp_path / "x.pt", train_until=None,
                               valid_until=None, overrides={"epochs": 1}, device="cpu", teacher=teacher))


def test_nothing_after_the_validation_period_is_read(simulated):
    from pathlib import Path

    full = load_dataset(simulated, "events")
    cut = load_dataset(simulated, "events", until_day=full.panel.first_day + 60)
    assert cut.panel.last_day == full.panel.first_day + 60 and cut.stages.shape == cut.panel.values.shape[::2]
    assert np.all(cut.panel.first_sale_day <= cut.panel.last_day)
    assert load_dataset(simulated, "events", until_day=full.panel.first_day - 1).panel.last_day == full.panel.last_day
    uci = Path(__file__).parents[1] / "data" / "uci_online_retail_sample.csv.gz"
    until = (date(2010, 12, 31) - date(1970, 1, 1)).days
    assert load_dataset(uci, "uci", until_day=until).panel.last_day <= until < load_dataset(uci, "uci").panel.last_day


@pytest.mark.parametrize("args,needle", [
    (["--data", "/no/such/dir"], "no such file"),
    (["--data", ".", "--train-until", "2011-04-31", "--valid-until", "2011-06-30"], "--train-until"),
    (["--data", ".", "--train-until", "2011-04-30"], "together"),
    (["--data", ".", "--source", "csv"], "--source"),
    (["--data", ".", "--teacher", "/no/such.pt"], "--teacher /no/such.pt: no such checkpoint"),
    (["--data", ".", "--teacher", "README.md"], "--teacher README.md"),
])
def test_bad_train_arguments_are_one_line_and_exit_code_2(args, needle):
    r = subprocess.run([sys.executable, "-m", "stream_app.cli", "train", *args], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr
