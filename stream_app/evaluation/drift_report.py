"""The drift report folder: metrics.json, summary.md (numbers against the issue's targets) and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.baselines import UNITS
from stream_app.evaluation import drift_plots
from stream_app.evaluation.dayloop import DayForecasts, StageChanges
from stream_app.evaluation.report import _clean, _f

PLOTS = {"coverage_around_events": "coverage_around_events.png", "alert_timeline": "alert_timeline.png"}
RUNS = ("calibrated", "uncalibrated")
SHOWN = ("1", "7")  # horizons in the summary's event tables
# The targets.
COVERAGE_TOLERANCE = 0.03
RECOVERY_DAYS = 3
MIN_PRECISION = MIN_RECALL = 0.85
MAX_LATENCY_DAYS = 3.0
MAX_FALSE_PER_100 = 1.0


def write_drift_report(out: Path, doc: dict, fc: DayForecasts, truth: StageChanges, alerts: StageChanges,
                       matched: np.ndarray, stages: np.ndarray, tracked: np.ndarray, panel) -> list[Path]:
    """Write ``doc`` as metrics.json, its summary.md and the plots to ``out``; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    doc = _clean({**doc, "plots": PLOTS})
    (out / "metrics.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    drift_plots.coverage_around_events(doc, out / PLOTS["coverage_around_events"])
    first = int(np.datetime64(doc["period"]["from"], "D").astype(np.int64))
    units = panel.values[:, UNITS, fc.days - panel.first_day].T
    rows = drift_plots.timeline_rows(truth, alerts, first)
    drift_plots.alert_timeline(fc, stages, tracked, alerts, matched, panel.skus, units, rows, first,
                               out / PLOTS["alert_timeline"])
    (out / "summary.md").write_text(summary_markdown(doc))
    return [out / "metrics.json", out / "summary.md", *(out / p for p in PLOTS.values())]


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**not met**")


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def _recovery(doc: dict, h: str, run: str):
    shift = doc["scenarios"].get("level_shift")
    return None if shift is None else shift["horizons"][h][run]["days_to_recover"]


def targets(doc: dict) -> list[tuple[str, str, str]]:
    """``(target, reached, verdict)`` rows: the issue's targets against this run."""
    o = doc["overall"]
    hs = list(o)
    cov = [o[h]["calibrated"]["coverage"] for h in hs]
    rows = [(f"overall p10–p90 coverage within 80 % ± {100 * COVERAGE_TOLERANCE:.0f} points (calibrated; "
             f"{'/'.join(hs)} d)", " / ".join(_pct(c) for c in cov),
             _met(all(c is not None and abs(c - 0.8) <= COVERAGE_TOLERANCE for c in cov)))]
    if "level_shift" in doc["scenarios"]:
        for h in SHOWN:
            d = _recovery(doc, h, "calibrated")
            rows.append((f"level shift: back within 5 points in ≤ {RECOVERY_DAYS} days ({h}-day horizon)",
                         f"{_days(d)} (without calibration: {_days(_recovery(doc, h, 'uncalibrated'))})",
                         _met(d is not None and d <= RECOVERY_DAYS)))
    w = [(o[h]["calibrated"]["wape"], o[h]["uncalibrated"]["wape"]) for h in hs]
    rows.append((f"WAPE not worse than uncalibrated ({'/'.join(hs)} d)",
                 " / ".join(f"{_f(c)} vs {_f(u)}" for c, u in w),
                 _met(all(c is not None and u is not None and c <= u + 1e-9 for c, u in w))))
    a = doc["alerts"]
    for key, name, ok in (("precision", f"stage alert precision ≥ {MIN_PRECISION}", lambda x: x >= MIN_PRECISION),
                          ("recall", f"stage alert recall ≥ {MIN_RECALL}", lambda x: x >= MIN_RECALL),
                          ("median_latency_days", f"median alert latency ≤ {MAX_LATENCY_DAYS:g} days",
                           lambda x: x <= MAX_LATENCY_DAYS),
                          ("false_alerts_per_100_sku_months", f"false alerts ≤ {MAX_FALSE_PER_100:g} per 100 "
                           "SKU-months", lambda x: x <= MAX_FALSE_PER_100)):
        v = a[key]
        rows.append((name, _f(v, 2), _met(None if v is None else ok(v))))
    return rows


def _days(d) -> str:
    return "not within the window" if d is None else f"{d} d"


def _noise_note(doc: dict) -> list[str]:
    """How precise a rolling coverage of the level shift's SKUs can be: its standard error near nominal."""
    shift = doc["scenarios"].get("level_shift")
    rec = doc["rules"]["recovery"]
    if shift is None:
        return []
    per_offset = shift["horizons"]["1"]["calibrated"]["forecasts_after"] / rec["after"]
    if per_offset <= 0:
        return []
    se = (rec["nominal"] * (1 - rec["nominal"]) / (rec["window"] * per_offset)) ** 0.5
    return ["", f"The level shift's SKUs give about {per_offset:.0f} scored forecasts per offset, so a trailing "
            f"{rec['window']}-day coverage near {100 * rec['nominal']:.0f} % has a standard error of about "
            f"{100 * se:.0f} points: days to recover within ±{100 * rec['band']:.0f} points are noisy at this size."]


def headline(doc: dict) -> list[str]:
    """The lines the CLI prints: each target, what was reached."""
    return [f"{t}: {r} ({v.strip('*')})" for t, r, v in targets(doc)]


def summary_markdown(doc: dict) -> str:
    """The Markdown summary of a drift metrics document (as written to metrics.json)."""
    rec, a = doc["rules"]["recovery"], doc["alerts"]
    lines = [f"# Drift scenarios: {doc['dataset']}", "", f"Regenerate: `{doc['command']}`", "",
             f"Scored period {doc['period']['from']} to {doc['period']['until']} (inclusive); the worker's day loop "
             f"is replayed from {doc['period']['replayed_from']} (the data's first day), "
             f"{doc['skus']['forecast_in_period']:,} SKUs forecast in the period of {doc['skus']['in_data']:,}.",
             "", f"Model: {doc['model_status']}", "",
             "## Targets", "", "| target | reached | |", "|---|---|---|"]
    lines += [f"| {t} | {r} | {v} |" for t, r, v in targets(doc)]
    lines += ["", "## Overall, calibrated vs uncalibrated (same forecasts)", "",
              "| horizon | coverage calibrated | coverage uncalibrated | WAPE calibrated | WAPE uncalibrated | "
              "forecasts |", "|---|---|---|---|---|---|"]
    for h, e in doc["overall"].items():
        c, u = e["calibrated"], e["uncalibrated"]
        lines.append(f"| {h} d | {_pct(c['coverage'])} | {_pct(u['coverage'])} | {_f(c['wape'])} | "
                     f"{_f(u['wape'])} | {c['forecasts']:,} |")
    if doc.get("shifted_category"):
        lines += ["", "Shifted category only, whole period: " + "; ".join(
            f"{h} d coverage {_pct(e['calibrated']['coverage'])} vs {_pct(e['uncalibrated']['coverage'])}, "
            f"WAPE {_f(e['calibrated']['wape'])} vs {_f(e['uncalibrated']['wape'])}"
            for h, e in doc["shifted_category"].items()) + "."]
    lines += ["", "## Coverage around each event", "",
              f"Before: offsets −{rec['before']} … −h (the whole horizon h before the event); first week: 0 … 6; "
              f"after: 0 … {rec['after'] - 1}. "
              f"Back within: days until the trailing {rec['window']}-day coverage is within ±{100 * rec['band']:.0f} "
              f"points of {100 * rec['nominal']:.0f} % for {rec['hold']} days in a row (see Definitions).", "",
              "| scenario | SKUs | horizon | run | before | first week | after | back within |",
              "|---|---|---|---|---|---|---|---|"]
    for key, e in doc["scenarios"].items():
        for h in SHOWN:
            for run in RUNS:
                c = e["horizons"][h][run]
                lines.append(f"| {key} ({e['note']}) | {e['skus']} | {h} d | {run} | {_pct(c['before'])} | "
                             f"{_pct(c['first_week'])} | {_pct(c['after'])} | {_days(c['days_to_recover'])} |")
    lines += _noise_note(doc)
    drifts = doc["drift_detections"]
    lines += ["", f"Drift detections (calibration resets): {len(drifts)}" +
              (": " + ", ".join(f"{d['category']} on {d['day']}" for d in drifts[:12]) if drifts else "") +
              (" …" if len(drifts) > 12 else "") + "."]
    lines += ["", "## Stage alerts", "",
              f"{a['alerts']:,} alerts, {a['true_changes']:,} true stage changes, {a['sku_months']:,} SKU-months. "
              f"Precision {_f(a['precision'], 2)}, recall {_f(a['recall'], 2)}, median latency "
              f"{_f(a['median_latency_days'], 1)} days (quartiles {a['latency_days_p25_p75']}), "
              f"{_f(a['false_alerts_per_100_sku_months'], 1)} false alerts per 100 SKU-months.", "",
              "| an alert may come before the change by up to … days | precision | recall | median latency, days | "
              "false per 100 SKU-months |", "|---|---|---|---|---|"]
    for early, e in [("3 (headline)", a), *a["earlier_alerts_count"].items()]:
        lines.append(f"| {early} | {_f(e['precision'], 2)} | {_f(e['recall'], 2)} | "
                     f"{_f(e['median_latency_days'], 1)} | {_f(e['false_alerts_per_100_sku_months'], 1)} |")
    lines += ["", "| true transition | true | detected |", "|---|---|---|"]
    lines += [f"| {k} | {v['true']} | {v['detected']} |" for k, v in a["by_transition"].items()]
    lines += ["", "| alert to stage | alerts | correct |", "|---|---|---|"]
    lines += [f"| {k} | {v['alerts']} | {v['correct']} |" for k, v in a["alerts_by_new_stage"].items()]
    lines += ["", "## Plots", "", f"![coverage around events]({PLOTS['coverage_around_events']})", "",
              f"![alert timeline]({PLOTS['alert_timeline']})", "", *DEFINITIONS, "",
              "## Rules used (the worker's, from its settings)", "",
              f"* calibration: {doc['rules']['calibration']}", f"* tracker: {doc['rules']['tracker']}",
              "", "## Timings (seconds, this machine)", ""]
    lines += [f"* {k}: {v:.1f}" for k, v in doc["timings"].items()]
    return "\n".join(lines) + "\n"


DEFINITIONS = [
    "## Definitions",
    "",
    "* **Replay.** The event files go through the worker's own day step offline (stream_app/data/offline_worker.py: "
    "the ingest, then per closed day and partition the tick of stream_app/core/ticks.py, rules from the settings): "
    "forecasts whose horizon ended that day meet the units sold and teach the partition's calibrator; every "
    "active SKU is forecast from the 56 days up to it, calibrated once the calibrator has learned anything, "
    "and its stage tracker advances. The published forecast and stage-alert messages are read back. Both runs "
    "forecast the same SKUs with the same model; *uncalibrated* (calibration off) publishes its quantiles raw.",
    "* **Scored forecasts**: made on a day of the period whose horizon ends inside it.",
    "* **Offset** of a forecast from an event on day e: (first day it covers) − e. Offset 0 is made the "
    "evening before the event's first day; offset 1 is the first made after one day of the new regime.",
    "* **Coverage**: share of actuals in [p10, p90] (ends included), nominal 80 %. Around an event, forecasts "
    "of the event's SKUs are pooled by offset; the *trailing rolling coverage* at offset k pools offsets "
    "k−2 … k.",
    "* **Back within** (days to recover): the first offset k ≥ 0 from which the rolling coverage is within "
    "±5 points of 80 % at k, k+1 and k+2; 0 when it never left; \"not within the window\" when that does "
    "not happen in the 28 offsets reported.",
    "* **Events** (simulation.json): level shift: every SKU of the shifted category, its first shifted day; "
    "promotion: each promoted SKU, its first promotion day; promotion end: the first day after it; early "
    "decline: the SKU's first day of true stage decline after its growth was cut.",
    "* **True stage change**: a day whose labels.csv stage differs from the SKU's stage the day before. "
    "**Alert**: a change confirmed by the stage tracker (a SKU's first stage is not an alert).",
    "* **Matching**: in order of alert day, an alert detects the earliest not yet detected true change of "
    "the same SKU to the same stage with alert day − change day in [−3, +14]. Precision: alerts that detect "
    "a change / alerts in the period. Recall: detected changes / changes on days from the period's start "
    "to its end − 14. Latency: alert day − change day over detections. The sensitivity rows let an alert "
    "detect a change up to 7 or 14 days later (alert day − change day from −7 or −14).",
    "* **False alerts per 100 SKU-months**: alerts in the period that detect nothing, per 100 × 30.44 "
    "SKU-days; a SKU-day counts from the SKU's first forecast on, while it has a true stage.",
]
