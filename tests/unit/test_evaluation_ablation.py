"""Ablations: the model scored without its text or without clicks and carts, beside itself in the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli import run_cli
from test_evaluation_cli import FROM, UNTIL, sim  # noqa: F401 (the module's simulator run fixture)

from models.interface import FeatureBatch, ForecastBatch
from stream_app.evaluation.ablation import Ablated, ablate


def batch(n=3, days=56):
    rng = np.random.default_rng(0)
    history = rng.poisson(2.0, size=(n, 6, days)).astype(np.float32)
    text = rng.normal(size=(n, 384)).astype(np.float32)
    return FeatureBatch(history=history, days_since_first_sale=np.full(n, 90), as_of_weekday=np.zeros(n, int),
                        spec_version=2, as_of_day=20_000, text=text, has_text=np.ones(n, bool))


class Recorder:
    name, version = "rec", "1"

    def __init__(self):
        self.seen = []

    def predict(self, features):
        self.seen.append(features)
        n = len(features)
        return ForecastBatch(np.zeros((n, 3, 3)), np.full((n, 4), 0.25))


def test_without_text_every_sku_looks_uncatalogued_and_the_history_is_untouched():
    f = batch()
    out = ablate(f, "text")
    assert not out.has_text.any() and not out.text.any()
    assert np.array_equal(out.history, f.history)
    assert f.has_text.all() and f.text.any(), "the caller's batch is left as it was"


def test_without_clicks_the_funnel_is_zero_and_orders_stay():
    f = batch()
    out = ablate(f, "clicks")
    assert not out.history[:, 0:3].any()
    assert np.array_equal(out.history[:, 3:], f.history[:, 3:])
    assert f.history[:, 0:3].any() and out.has_text.all()


def test_ablated_forecaster_scores_the_model_on_the_reduced_input():
    rec = Recorder()
    a = Ablated(rec, "text")
    a.predict(batch())
    assert a.name == "rec without text" and not rec.seen[0].has_text.any()
    with pytest.raises(ValueError, match="unknown ablation"):
        Ablated(rec, "price")


def test_the_report_puts_each_ablation_beside_the_model(sim, tmp_path):  # noqa: F811
    report = tmp_path / "report"
    r = run_cli("evaluate", "--data", str(sim), "--source", "events", "--from", FROM, "--until", UNTIL,
                "--model", "default", "--out", str(report), "--baselines", "snaive7")
    assert r.returncode == 0, r.stderr
    m = json.loads((report / "metrics.json").read_text())
    model = m["model"]
    rows = m["ablations"]["rows"]
    assert rows == {"text": f"{model} without text", "clicks": f"{model} without clicks and carts"}
    assert m["best_baseline_7d"] == "seasonal-naive-7", "an ablation is the model's own row, never a baseline"
    for name in rows.values():
        assert m["forecasters"][name]["horizons"]["7"]["pairs"] == m["forecasters"][model]["horizons"]["7"]["pairs"]
        assert m["forecasters"][name]["horizons"]["7"]["wape"] != m["forecasters"][model]["horizons"]["7"]["wape"]
    summary = (report / "summary.md").read_text()
    assert "## Ablations: what each input earns" in summary
    assert f"| {model} without text |" in summary


def test_an_input_the_data_lacks_is_left_out_with_a_note(tmp_path):
    rng = np.random.default_rng(3)
    day0 = 19_700
    lines = []
    for s in range(6):
        for d in range(110):
            for k in range(rng.poisson(1.5)):
                ts = (day0 + d) * 86_400_000 + 3_600_000 * (1 + k)
                lines.append(json.dumps({"schema_version": 1, "event_id": f"o{s}-{d}-{k}", "order_id": f"x{s}{d}{k}",
                                         "sku": f"S{s}", "ts": ts, "qty": 1, "unit_price": 1.0}))
    (tmp_path / "orders.jsonl").write_text("\n".join(lines) + "\n")
    report = tmp_path / "report"
    r = run_cli("evaluate", "--data", str(tmp_path), "--source", "events", "--from", "2024-02-26",
                "--until", "2024-03-20", "--model", "default", "--out", str(report), "--baselines", "snaive7",
                "--ablations", "clicks")
    assert r.returncode == 0, r.stderr
    m = json.loads((report / "metrics.json").read_text())
    assert "ablations" not in m and len(m["forecasters"]) == 3  # model, published, seasonal naive
    assert any("without clicks and carts" in n and "left out" in n for n in m["baseline_notes"])
