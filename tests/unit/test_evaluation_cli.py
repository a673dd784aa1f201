"""``trendcast evaluate`` end to end on a tiny simulator run, and its one-line errors."""

from __future__ import annotations

import json

import pytest
from test_cli import run_cli

from models.interface import HORIZONS

START = "2024-01-01"  # the simulation's first day; 80 days run to 2024-03-20
FROM, UNTIL = "2024-02-26", "2024-03-20"  # origins 2024-02-26 and 2024-03-04 (+14 days <= UNTIL)


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    r = run_cli("simulate", "--out", str(out), "--skus", "16", "--days", "80", "--start", START, "--seed", "11")
    assert r.returncode == 0, r.stderr
    return out


def test_evaluate_writes_metrics_summary_and_plots(sim, tmp_path):
    report = tmp_path / "report"
    r = run_cli("evaluate", "--data", str(sim), "--source", "events", "--labels", str(sim / "labels.csv"),
                "--from", FROM, "--until", UNTIL, "--model", "none", "--out", str(report),
                "--baselines", "ewma,snaive7,autoets,tsb,holtwinters")
    assert r.returncode == 0, r.stderr
    assert {p.name for p in report.iterdir()} == {"metrics.json", "summary.md", "forecast_vs_actual.png",
                                                  "error_by_stage.png", "coverage.png"}
    assert all((report / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in
               ("forecast_vs_actual.png", "error_by_stage.png", "coverage.png"))
    m = json.loads((report / "metrics.json").read_text())
    assert m["period"]["origins"] == ["2024-02-26", "2024-03-04"]
    assert m["model"] is None and "--model none" in m["model_status"]
    assert m["stage_truth"] == "simulator labels"
    assert set(m["forecasters"]) == {"baseline-ewma", "seasonal-naive-7", "autoets", "tsb", "river-holt-winters"}
    for e in m["forecasters"].values():
        assert set(e["horizons"]) == {str(h) for h in HORIZONS}
        assert set(e["horizons"]["7"]) == {"wape", "mase", "mase_pairs_left_out", "pinball", "pinball_scaled",
                                           "coverage_p10_p90", "width_p10_p90", "pairs"}
        assert set(e["by_sku_age"]) == {"established", "new", "not sold yet"}
        assert e["horizons"]["1"]["pairs"] == 2 * m["skus"]["evaluated"]
    assert m["forecasters"]["baseline-ewma"]["stages"]["macro_f1"] is not None
    assert m["forecasters"]["autoets"]["stages"] is None
    assert m["best_baseline_7d"] in m["forecasters"]
    summary = (report / "summary.md").read_text()
    assert "| seasonal-naive-7 |" in summary and "Regenerate: `trendcast evaluate --data" in summary
    assert "WAPE over 7 days by lifecycle stage" in summary and "## Established and new SKUs" in summary
    assert r.stdout.splitlines()[0].startswith("model: not evaluated")


def test_the_published_stream_is_scored_over_the_evaluated_skus_and_over_every_sku_held(sim, tmp_path):
    report = tmp_path / "report"
    r = run_cli("evaluate", "--data", str(sim), "--source", "events", "--from", FROM, "--until", UNTIL,
                "--out", str(report), "--baselines", "ewma", "--ablations", "none",
                timeout=300)  # loads the model and the text encoder, then replays the worker: ~40 s alone
    assert r.returncode == 0, r.stderr
    m = json.loads((report / "metrics.json").read_text())
    scored = m["forecasters"]["published"]["horizons"]["7"]["pairs"]
    held_pairs = sum(row["pairs"] for row in m["published_by_age"]["7"] if row["age_days"] != "none held")
    every = m["published_every_sku"]["7"]
    assert held_pairs <= scored and every["pairs"] >= held_pairs  # every SKU held: the evaluated ones and more
    assert 0.0 <= every["coverage"] <= 1.0 and every["wape"] is not None
    assert "Every SKU whose consumer holds a forecast" in (report / "summary.md").read_text()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--source", "kaggle"], "unknown --source"),
        (["--from", "2024-02-30"], "--from"),
        (["--until", "2024-03-01"], "no origin"),
        (["--baselines", "ewma,prophet"], "prophet"),
        (["--ablations", "text,price"], "--ablations: unknown price"),
        (["--baselines", "weekly-quantile"], "weekly-quantiles, lightgbm"),  # the error lists the anchors
        (["--origins-every", "0"], "--origins-every"),
        (["--labels", "/no/such/labels.csv"], "no such labels file"),
        (["--until", "2024-06-30"], "after the data's last day"),
        (["--model", "/no/such/checkpoint.pt"], "--model"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_code_2(sim, tmp_path, args, needle):
    base = {"--data": str(sim), "--source": "events", "--from": FROM, "--until": UNTIL, "--out": str(tmp_path / "r"),
            "--baselines": "snaive7", "--model": "none"}
    base.update(dict(zip(args[::2], args[1::2])))
    r = run_cli("evaluate", *[x for kv in base.items() for x in kv])
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("trendcast: "), r.stderr
    assert not (tmp_path / "r").exists()


def test_missing_data_is_one_line(tmp_path):
    r = run_cli("evaluate", "--data", str(tmp_path / "nothing"), "--from", FROM, "--until", UNTIL)
    assert r.returncode == 2 and "no such file or folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_evaluate_runs_the_anchors_by_name(sim, tmp_path):
    pytest.importorskip("lightgbm")
    report = tmp_path / "report"
    r = run_cli("evaluate", "--data", str(sim), "--source", "events", "--from", FROM, "--until", UNTIL,
                "--model", "none", "--out", str(report), "--baselines", "weekly-quantiles,lightgbm")
    assert r.returncode == 0, r.stderr
    m = json.loads((report / "metrics.json").read_text())
    assert set(m["forecasters"]) == {"weekly-quantiles-8", "lightgbm"}
    assert m["forecasters"]["lightgbm"]["fit_seconds"] >= 0
    assert "fit lightgbm (every origin)" in m["timings"]


def _request(baselines, named, tmp_path):
    from stream_app.cli.evalcli import EvalRequest

    return EvalRequest(data=tmp_path, source="events", first_day=0, last_day=60, out=tmp_path / "r",
                       baselines=baselines, named_baselines=named)


def test_without_lightgbm_a_named_anchor_is_an_error_and_the_default_set_skips_it(monkeypatch, tmp_path):
    from stream_app.cli import evalcli

    monkeypatch.setattr(evalcli, "lightgbm_missing", lambda: "the lightgbm package is not installed")
    everything = evalcli.parse_baselines("all")
    assert "lightgbm" in everything and "weekly-quantiles" in everything
    with pytest.raises(evalcli.BadRequest, match="--baselines lightgbm: the lightgbm package is not installed"):
        evalcli.usable_baselines(_request(("snaive7", "lightgbm"), True, tmp_path))
    kept, notes = evalcli.usable_baselines(_request(everything, False, tmp_path))
    assert kept == tuple(b for b in everything if b != "lightgbm")
    assert len(notes) == 1 and "lightgbm baseline skipped" in notes[0]
    assert evalcli.usable_baselines(_request(("snaive7",), True, tmp_path)) == (("snaive7",), [])
