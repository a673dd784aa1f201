"""`trendcast evaluate --retrain-every`: a frozen and a retraining worker replayed, scored week by week."""

from __future__ import annotations

import json

import pytest
from test_cli import assert_one_line_error, run_cli

from models.neural import DEFAULT_CHECKPOINT, load_forecaster
from models.retraining import RetrainRules
from stream_app.cli.continualcli import ContinualRequest, run_continual
from stream_app.requests import BadRequest, day_of
from stream_app.sim import Scenarios, Simulator, write_simulation
from stream_app.core.windows import DAY_MS

START = day_of("2024-07-01", "start")


@pytest.fixture(scope="module")
def sim_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sim")
    write_simulation(Simulator(n_skus=40, days=70, start_ms=START * DAY_MS, seed=5,
                               scenarios=Scenarios.parse("promotion,conversion_shift")), folder)
    return folder


def _request(folder, out, **kw) -> ContinualRequest:
    return ContinualRequest(data=folder, source="events", first_day=START + 35, last_day=START + 69, every=7,
                            retrain_from=START + 28, out=out, command="test", **kw)


def test_both_workers_are_scored_each_week_and_every_retrain_is_reported(sim_folder, tmp_path):
    # A margin of -100%: every cycle promotes (a candidate, or the shipped checkpoint back), so new models forecast.
    lines = run_continual(_request(sim_folder, tmp_path), RetrainRules(epochs=1, margin=-1.0, coverage_slack=1.0,
                                                                                 newest_slack=100.0),
                          echo=lambda m: None)
    doc = json.loads((tmp_path / "metrics.json").read_text())
    # Weekly origins whose 7 days end by the last day (2024-09-08).
    assert [w["origin"] for w in doc["weeks"]] == ["2024-08-05", "2024-08-12", "2024-08-19", "2024-08-26"]
    for w in doc["weeks"]:
        assert w["frozen"]["pairs"] == w["retrained"]["pairs"] > 0
        assert 0 <= w["frozen"]["coverage"] <= 1 and w["retrained"]["wape"] is not None
    retrains = doc["retrains"]
    assert [r["day"] for r in retrains] == ["2024-07-29", "2024-08-05", "2024-08-12", "2024-08-19", "2024-08-26",
                                            "2024-09-02"]
    promoted = [r for r in retrains if r["promoted"]]
    default = load_forecaster(DEFAULT_CHECKPOINT).version
    new = [r for r in promoted if r["model"] != default]
    assert new and len({r["model"] for r in new}) == len(new)
    # With no margin the shipped checkpoint may win a cycle too: then it is a roll back, said so.
    assert all(r["reason"].startswith("rolled back to the shipped checkpoint") for r in promoted if r not in new)
    # The frozen worker's WAPE differs from the retrained one's once new models forecast.
    assert any(w["frozen"]["wape"] != w["retrained"]["wape"] for w in doc["weeks"])
    assert doc["last_weeks"]["frozen"]["weeks"] == 4 and "targets" in doc and lines[-1].endswith("summary.md")
    assert "| 2024-07-29 | yes |" in (tmp_path / "summary.md").read_text()


def test_a_guard_that_refuses_every_candidate_leaves_the_two_workers_equal(sim_folder, tmp_path):
    run_continual(_request(sim_folder, tmp_path), RetrainRules(epochs=1, margin=0.99), echo=lambda m: None)
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert not any(r["promoted"] for r in doc["retrains"])
    assert all(w["frozen"] == w["retrained"] for w in doc["weeks"])
    assert doc["wape_gain_last_weeks"] == 0.0 and doc["targets"]["met"] is False


def test_a_period_past_the_data_is_refused(sim_folder, tmp_path):
    with pytest.raises(BadRequest, match="after the data's last day"):
        run_continual(_request(sim_folder, tmp_path).__class__(
            data=sim_folder, source="events", first_day=START + 35, last_day=START + 90, every=7,
            retrain_from=START + 28, out=tmp_path), echo=lambda m: None)


@pytest.mark.parametrize("args, needle", [
    (["--retrain-from", "2024-07-20"], "--retrain-from needs --retrain-every"),
    (["--retrain-every", "7", "--baselines", "ewma"], "--baselines: not with --retrain-every"),
    (["--retrain-every", "7", "--scenarios", "all"], "--scenarios: not with --retrain-every"),
    (["--retrain-every", "7", "--until", "2024-08-07"], "no week fits"),
    (["--retrain-every", "0"], "--retrain-every"),
])
def test_bad_arguments_are_one_line(sim_folder, tmp_path, args, needle):
    base = {"--data": str(sim_folder), "--source": "events", "--from": "2024-08-05", "--until": "2024-09-08",
            "--out": str(tmp_path / "r")}
    base.update(dict(zip(args[::2], args[1::2])))
    assert_one_line_error(run_cli("evaluate", *[x for kv in base.items() for x in kv]), needle)
    assert not (tmp_path / "r").exists()
