"""``trendcast evaluate --scenarios`` end to end on a tiny simulation with a ×2 level shift, and its one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_cli import assert_one_line_error, run_cli

from models.baselines import UNITS, EwmaForecaster
from stream_app.cli.driftcli import DriftRequest, run_drift
from stream_app.requests import day_of

START = "2024-01-01"  # 90 days run to 2024-03-30; the shift comes on day 54 (2024-02-24)
FROM, UNTIL = "2024-01-29", "2024-03-30"
FILES = {"metrics.json", "summary.md", "coverage_around_events.png", "alert_timeline.png"}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    r = run_cli("simulate", "--out", str(out), "--skus", "40", "--days", "90", "--start", START, "--seed", "5",
                "--level-shift-factor", "2", "--orders-per-sku", "2000")
    assert r.returncode == 0, r.stderr
    for funnel in ("clicks.jsonl", "carts.jsonl"):  # the replay reads units only here: 20x fewer events to ingest
        (out / funnel).unlink()
    return out


class ShiftBlind:
    """Deliberately biased: the EWMA baseline's p50 on a history whose units from ``day`` on are halved, ×0.55/×1.6.

    After a ×2 shift on ``day`` it forecasts the old level of the shifted
    category (and half the level of the others), with intervals too narrow
    to reach the new one: raw intervals miss from then on.
    """

    name, version = "shift-blind", "1"

    def __init__(self, day: int) -> None:
        self.day, self.ewma = day, EwmaForecaster()

    def predict(self, features):
        import dataclasses

        h = features.history.copy()
        first = features.as_of_day - h.shape[2] + 1
        after = np.arange(first, features.as_of_day + 1) >= self.day
        h[:, UNITS, after] *= 0.5
        out = self.ewma.predict(dataclasses.replace(features, history=h))
        p50 = out.quantiles[:, :, 1:2]
        return dataclasses.replace(out, quantiles=p50 * np.array([0.55, 1.0, 1.6], np.float32))


def test_calibration_recovers_what_a_shift_blind_forecaster_misses(sim, tmp_path):
    params = json.loads((sim / "simulation.json").read_text())
    assert params["level_shift"]["factor"] == 2.0
    shift_day = day_of(START, "--start") + params["level_shift"]["day"]
    req = DriftRequest(data=sim, first_day=day_of(FROM, "--from"), last_day=day_of(UNTIL, "--until"),
                       out=tmp_path / "r", command="test")
    lines = run_drift(req, forecaster=ShiftBlind(shift_day))
    assert lines[0] == "model: shift-blind (given)" and lines[-1].startswith("wrote ")
    assert {p.name for p in (tmp_path / "r").iterdir()} == FILES
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    shift = m["scenarios"]["level_shift"]
    assert shift["skus"] >= 3
    for h in ("1", "7"):
        cal, raw = shift["horizons"][h]["calibrated"], shift["horizons"][h]["uncalibrated"]
        assert cal["after"] > raw["after"] + 0.15, (h, cal, raw)
        assert len(cal["rolling"]) == 56
    assert m["overall"]["7"]["calibrated"]["coverage"] > m["overall"]["7"]["uncalibrated"]["coverage"]


def test_cli_writes_the_report_with_the_baseline(sim, tmp_path):
    out = tmp_path / "report"
    r = run_cli("evaluate", "--data", str(sim), "--from", FROM, "--until", UNTIL, "--scenarios", "all",
                "--model", "ewma", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert {p.name for p in out.iterdir()} == FILES
    assert all((out / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in FILES if p.endswith(".png"))
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["scenarios"]) == {"level_shift", "promotion", "promotion_end", "early_decline"} & set(m["scenarios"])
    assert "level_shift" in m["scenarios"] and m["rules"]["tracker"]["persist_days"] >= 1
    a = m["alerts"]
    assert a["alerts"] == a["correct_alerts"] + a["false_alerts"] and a["true_changes"] > 0
    summary = (out / "summary.md").read_text()
    assert "## Targets" in summary and "## Definitions" in summary and "--scenarios all" in summary
    assert r.stdout.splitlines()[0].startswith("model: baseline-ewma")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--scenarios", "tsunami"], "unknown tsunami"),
        (["--baselines", "ewma"], "--baselines: backtest options"),
        (["--origins-every", "3"], "--origins-every: backtest options"),
        (["--source", "uci"], "--source events"),
        (["--model", "none"], "needs a forecaster"),
        (["--model", "/no/such.pt"], "--model"),
        (["--until", "2024-02-05"], "at least 15 days"),
        (["--until", "2024-06-30"], "outside the data"),
        (["--labels", "/no/labels.csv"], "no such labels file"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_code_2(sim, tmp_path, args, needle):
    base = {"--data": str(sim), "--from": FROM, "--until": UNTIL, "--out": str(tmp_path / "r"),
            "--scenarios": "all", "--model": "ewma"}
    base.update(dict(zip(args[::2], args[1::2])))
    assert_one_line_error(run_cli("evaluate", *[x for kv in base.items() for x in kv]), needle)
    assert not (tmp_path / "r").exists()


def test_a_folder_without_simulation_json_is_refused(tmp_path):
    (tmp_path / "orders.jsonl").write_text("")
    r = run_cli("evaluate", "--data", str(tmp_path), "--from", FROM, "--until", UNTIL, "--scenarios", "all",
                "--model", "ewma")
    assert r.returncode == 2 and "no simulation.json" in r.stderr
