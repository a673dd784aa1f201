"""Fine-tuning the text encoder on launches, and ``trendcast evaluate --cold-starts`` end to end on a simulator run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_cli import run_cli

from models.text import TextEncoder
from models.text_tuning import fine_tune

START, FROM, UNTIL = "2024-01-01", "2024-03-10", "2024-04-19"


def test_fine_tuning_trains_only_the_top_layers_and_learns_which_texts_sell():
    texts = [f"{c} christmas bauble {i}" for i, c in enumerate(["red", "gold", "silver", "green"])] + \
            [f"{c} garden hose {i}" for i, c in enumerate(["black", "grey", "blue", "brown"])]
    totals = np.array([[20, 140, 280]] * 4 + [[0, 1, 2]] * 4, dtype=np.float32)
    encoder = TextEncoder(device="cpu")
    before = encoder.encode(texts)
    lower = [p.detach().clone() for p in encoder.model.encoder.layer[0].parameters()]
    top = [p.detach().clone() for p in encoder.model.encoder.layer[-1].parameters()]
    report = fine_tune(encoder, texts, totals, layers=1, epochs=15, batch_size=4)
    assert report.texts == 8 and len(report.losses) == 15
    assert report.losses[-1] < 0.5 * report.losses[0], report.losses
    assert all(torch.equal(a, b) for a, b in zip(lower, encoder.model.encoder.layer[0].parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(top, encoder.model.encoder.layer[-1].parameters()))
    after = encoder.encode(texts)
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(after, before, atol=1e-3)
    assert encoder.cache_dir is None  # tuned vectors never land in the pretrained vectors' cache
    with pytest.raises(ValueError, match="launch totals"):
        fine_tune(encoder, texts, totals[:3])
    with pytest.raises(ValueError, match="layers"):
        fine_tune(encoder, texts, totals, layers=7)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    r = run_cli("simulate", "--out", str(out), "--skus", "150", "--days", "110", "--start", START, "--seed", "11")
    assert r.returncode == 0, r.stderr
    return out


def test_cold_starts_report_scores_every_launch_three_ways(sim, tmp_path):
    out = tmp_path / "report"
    r = run_cli("evaluate", "--cold-starts", "--data", str(sim), "--source", "events", "--from", FROM, "--until", UNTIL,
                "--out", str(out))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["scores"]) == {"no_text", "frozen", "fine_tuned"}
    launches = {by_h["7"]["launches"] for by_h in metrics["scores"].values()}
    assert len(launches) == 1 and launches.pop() > 0
    assert metrics["launches_trained_on"] >= 20
    for by_h in metrics["scores"].values():
        assert set(by_h) == {"1", "7", "14"}
        assert all(0 <= v["coverage_p10_p90"] <= 1 and v["wape"] >= 0 for v in by_h.values())
    summary = (out / "summary.md").read_text()
    assert "| 7 d | fine_tuned |" in summary and "without text" in summary


@pytest.mark.parametrize("args, needle", [
    (["--from", "2024-01-20"], "--from 2024-01-20"),
    (["--retrain-every", "7"], "--retrain-every: not with --cold-starts"),
])
def test_bad_cold_start_arguments_are_one_line(sim, tmp_path, args, needle):
    base = {"--data": str(sim), "--source": "events", "--from": FROM, "--until": UNTIL, "--out": str(tmp_path / "r")}
    base.update(dict(zip(args[::2], args[1::2])))
    r = run_cli("evaluate", "--cold-starts", *[x for kv in base.items() for x in kv])
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert not (tmp_path / "r").exists()
