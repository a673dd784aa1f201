"""A stage alert's confidence reads as the share of such alerts that were right (models/confidence.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_cli import run_cli
from test_evaluation_cli import FROM, UNTIL, sim  # noqa: F401 (the module's simulator run fixture)

from models.checkpoint import read_meta
from models.confidence import META_KEY, ConfidenceMap, fit, reliability
from models.neural import DEFAULT_CHECKPOINT
from stream_app.cli import confidencecli
from stream_app.requests import day_of
from stream_app.worker.scoring import build_scorer
from stream_app.settings import load_settings


def overconfident(n=4_000, seed=0):
    """Raw confidences in [0.5, 1] whose true chance of being right is raw² (a head that believes too much)."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0.5, 1.0, n)
    return raw, rng.random(n) < raw**2


def test_the_fitted_map_makes_a_confidence_read_as_a_frequency():
    raw, right = overconfident()
    cmap = fit(raw, right)
    assert all(b > a for a, b in zip(cmap.x, cmap.x[1:])) and all(b >= a for a, b in zip(cmap.y, cmap.y[1:]))
    before, after = reliability(raw, right)["ece"], reliability(cmap(raw), right)["ece"]
    assert before > 0.1 and after < 0.03
    # judged on fresh alerts of the same head, not the ones it was fitted on
    raw2, right2 = overconfident(seed=1)
    assert reliability(cmap(raw2), right2)["ece"] < 0.04
    assert cmap(np.array([0.0, 2.0])).tolist() == pytest.approx([cmap.y[0], cmap.y[-1]])


def test_reliability_bins_and_error():
    conf = np.array([0.55, 0.55, 0.95, 0.95])
    right = np.array([True, False, True, True])
    r = reliability(conf, right)
    assert r["alerts"] == 4 and r["share_right"] == 0.75
    assert r["ece"] == pytest.approx(0.5 * 0.05 + 0.5 * 0.05)
    assert [b["alerts"] for b in r["bins"]] == [0, 2, 0, 0, 0, 2]
    assert reliability(np.array([]), np.array([], bool))["ece"] is None


def test_a_map_survives_the_metadata_and_a_broken_one_is_not_used():
    cmap = ConfidenceMap((0.3, 0.6, 0.9), (0.2, 0.4, 0.7), "sim seed 8", 120)
    assert ConfidenceMap.from_meta({META_KEY: cmap.to_meta()}) == cmap
    for bad in ({"x": [0.5, 0.4], "y": [0.1, 0.2]}, {"x": [0.5], "y": [1.5]}, {"x": [0.2, 0.5], "y": [0.6, 0.3]},
                {"x": "no"}, [1, 2], {"x": [0.1, float("nan")], "y": [0.1, 0.2]}):
        assert ConfidenceMap.from_meta({META_KEY: bad}) is None
    assert ConfidenceMap.from_meta({}) is None


def test_fit_confidence_writes_a_map_the_worker_then_publishes_with(sim, tmp_path, monkeypatch):  # noqa: F811
    path = tmp_path / "model.pt"
    shutil.copy(DEFAULT_CHECKPOINT, path)
    shutil.copy(DEFAULT_CHECKPOINT.with_suffix(".json"), path.with_suffix(".json"))  # the readable copy beside it
    before = read_meta(path)
    settings = load_settings(forecaster="model", model_path=str(path))
    monkeypatch.setattr(confidencecli, "MIN_ALERTS", 5)
    lines = confidencecli.run_fit_confidence(settings, sim, None, day_of("2024-01-20", "--from"),
                                             day_of(UNTIL, "--until"), write=True)
    assert lines[-1].startswith(f"wrote the map into {path}")
    after = read_meta(path)
    rest = {k: v for k, v in before.items() if k != META_KEY}
    assert after["id"] == before["id"] and {k: v for k, v in after.items() if k != META_KEY} == rest
    assert after[META_KEY] != before.get(META_KEY), "the map fitted on this run replaces the shipped one"
    assert json.loads(path.with_suffix(".json").read_text())[META_KEY] == after[META_KEY]
    cmap = ConfidenceMap.from_meta(after)
    assert cmap is not None and cmap.pairs >= 5
    scorer = build_scorer(settings)
    assert scorer.confidence == cmap
    raw = np.linspace(0.3, 1.0, 8)
    assert np.allclose(scorer.stage_confidence(raw), cmap(raw))


def test_too_few_alerts_is_one_line(sim, tmp_path):  # noqa: F811
    r = run_cli("fit-confidence", "--data", str(sim), "--from", FROM, "--until", FROM)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "stage-change alerts" in lines[0] and "need 50" in lines[0], r.stderr


def test_a_published_stage_change_carries_the_mapped_confidence_and_low_cover_its_belief():
    from models.stage_tracker import StageStep, TrackerState
    from stream_app.core.inventory import StockRules
    from stream_app.core.ticks import alert_messages

    state = TrackerState.empty(2)
    state = TrackerState(np.array([1, 1]), state.since, state.candidate, state.run, state.support,
                         np.array([[0.1, 0.7, 0.1, 0.1]] * 2, dtype=np.float32))
    step = StageStep(state, np.array([True, False]), np.array([0, 1]), np.array([0.9, 0.0], dtype=np.float32))
    cmap = ConfidenceMap((0.5, 1.0), (0.4, 0.6))
    out = alert_messages([b"A", b"B"], [(0, "stage_change"), (1, "low_cover")], np.ones((2, 28)), np.array([40, 40]),
                         step, np.ones((2, 3)), 1_700_000_000_000, StockRules(), None, cmap)
    change, low = (json.loads(v) for _, v in out)
    assert change["confidence"] == pytest.approx(0.56, abs=1e-4)  # 0.9 raw on the 0.5→0.4, 1.0→0.6 map
    assert low["confidence"] == pytest.approx(0.7, abs=1e-4)  # today's smoothed belief in growth, not mapped


UCI_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "uci_online_retail_sample.csv.gz"


def test_fit_confidence_on_a_shops_history_judges_alerts_by_the_hindsight_rule(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    shutil.copy(DEFAULT_CHECKPOINT, path)
    shutil.copy(DEFAULT_CHECKPOINT.with_suffix(".json"), path.with_suffix(".json"))
    settings = load_settings(forecaster="model", model_path=str(path))
    monkeypatch.setattr(confidencecli, "MIN_ALERTS", 5)
    lines = confidencecli.run_fit_confidence(settings, UCI_SAMPLE, None, day_of("2010-12-15", "--from"),
                                             day_of("2011-01-20", "--until"), write=True, source="uci",
                                             read_until=day_of("2011-01-24", "--read-until"))
    assert "stage-change alerts judged" in lines[0] and lines[-1].startswith(f"wrote the map into {path}")
    cmap = ConfidenceMap.from_meta(read_meta(path))
    assert cmap.pairs >= 5 and "hindsight rule, read to 2011-01-24" in cmap.fitted_on
    assert cmap.fitted_on.endswith("stage changes 2010-12-15..2011-01-20")


@pytest.mark.parametrize("args, says", [
    (["--labels", "labels.csv"], "judged by the hindsight rule"),
    (["--read-until", "2011-01-10"], "--read-until 2011-01-10 is before --until 2011-01-20"),
])
def test_a_bad_fit_confidence_option_for_a_shops_history_is_one_line(args, says):
    r = run_cli("fit-confidence", "--data", str(UCI_SAMPLE), "--from", "2011-01-01", "--until", "2011-01-20", *args)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and says in lines[0], r.stderr
