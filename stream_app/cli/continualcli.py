"""The edge of ``trendcast evaluate --retrain-every``: frozen against weekly-retrained workers, a report folder.

Replays the data twice through the worker's day loop (one partition), once
with the checkpoint frozen and once retraining every ``--retrain-every``
days from ``--retrain-from`` (:mod:`stream_app.evaluation.continual`), and
scores the 7-day forecasts each consumer holds at weekly origins from
``--from`` to ``--until``: WAPE, p10-p90 coverage and width per week, the
last 8 weeks pooled, and each retrain's verdict.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from models.retraining import RetrainRules
from stream_app.requests import DAY_MS, BadRequest, iso

LAST_WEEKS = 8
TARGET_GAIN, WORST_WEEK = 0.05, 0.01  # the targets: 5 % lower WAPE over the last 8 weeks, never 1 % worse


@dataclass(frozen=True)
class ContinualRequest:
    """What was asked (days since 1970-01-01 UTC, ``last_day`` inclusive)."""

    data: Path
    source: str
    first_day: int
    last_day: int
    every: int
    retrain_from: int
    out: Path
    model: str = "default"
    command: str = ""


def run_continual(req: ContinualRequest, rules: RetrainRules = RetrainRules(), echo=print) -> list[str]:
    """Replay, score, write ``metrics.json`` and ``summary.md`` to ``req.out``; the lines to print."""
    from stream_app.data.replay import ADAPTERS
    from stream_app.data.samples import panel_from_series
    from stream_app.evaluation.backtest import skus_with_sales
    from stream_app.evaluation.continual import pooled, replay, weekly
    from stream_app.evaluation.dataset import daily_series, event_folder
    from stream_app.settings import load_settings
    from stream_app.worker.scoring import build_scorer

    if req.source not in ADAPTERS:
        raise BadRequest(f"unknown --source {req.source!r}; one of: {', '.join(ADAPTERS)}")
    if not req.data.exists():
        raise BadRequest(f"no such file or folder: {req.data}")
    origins = np.arange(req.first_day, req.last_day - 7 + 1, 7)
    if len(origins) == 0:
        raise BadRequest(f"--from {iso(req.first_day)} --until {iso(req.last_day)}: no week fits; give at least 8 days")
    settings = load_settings(forecaster="model", **({} if req.model == "default" else {"model_path": req.model}))
    with tempfile.TemporaryDirectory(prefix="trendcast-continual-") as tmp:
        try:
            panel = panel_from_series(daily_series(event_folder(req.data, req.source, Path(tmp))))
        except (ValueError, OSError) as exc:
            raise BadRequest(f"{req.data}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if req.last_day > panel.last_day:
        raise BadRequest(f"--until {iso(req.last_day)} is after the data's last day {iso(panel.last_day)}")

    def rows():
        return ADAPTERS[req.source](req.data, until_ms=(req.last_day + 1) * DAY_MS).rows()

    start = time.perf_counter()
    keep = int(origins[0]) - 60
    runs = {"frozen": replay(settings, rows(), build_scorer(settings), keep_from=keep)}
    echo(f"frozen worker replayed in {time.perf_counter() - start:.0f} s")
    mark = time.perf_counter()
    runs["retrained"] = replay(settings, rows(), build_scorer(settings), keep_from=keep, every=req.every,
                               first_retrain=req.retrain_from, rules=rules,
                               progress=lambda m: echo(f"  {m}"))
    echo(f"retraining worker replayed in {time.perf_counter() - mark:.0f} s")
    weeks = weekly(runs, panel, skus_with_sales(panel, req.first_day, req.last_day), origins)
    weeks = [w for w in weeks if w["units"] > 0]
    last = [w for w in weeks if all(np.isfinite(w[k]["wape"] or np.nan) for k in runs)][-LAST_WEEKS:]
    summary = {k: pooled(last, k) for k in runs}
    gain = 1.0 - summary["retrained"]["wape"] / summary["frozen"]["wape"]
    worst = max((w["retrained"]["wape"] / w["frozen"]["wape"] - 1.0 for w in last), default=0.0)
    doc = {"command": req.command, "request": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(req).items()},
           "rules": asdict(rules), "weeks": [{**w, "origin": iso(w["origin"])} for w in weeks],
           "last_weeks": summary, "wape_gain_last_weeks": gain, "worst_week_vs_frozen": worst,
           "targets": {"wape_gain_at_least": TARGET_GAIN, "worst_week_at_most": WORST_WEEK,
                       "met": bool(gain >= TARGET_GAIN and worst <= WORST_WEEK)},
           "retrains": [{**asdict(r), "day": iso(r.day)} for r in runs["retrained"].retrains]}
    req.out.mkdir(parents=True, exist_ok=True)
    (req.out / "metrics.json").write_text(json.dumps(doc, indent=1) + "\n")
    (req.out / "summary.md").write_text(summary_markdown(doc))
    return [f"last {len(last)} weeks: 7-day WAPE frozen {summary['frozen']['wape']:.4f}, retrained "
            f"{summary['retrained']['wape']:.4f} ({0.0 - gain:+.1%} WAPE); worst week {worst:+.1%} against frozen; "
            f"{sum(r.promoted for r in runs['retrained'].retrains)} of {len(runs['retrained'].retrains)} retrains "
            f"promoted", f"report: {req.out / 'summary.md'}"]


def summary_markdown(doc: dict) -> str:
    """The report's summary.md."""
    s, t = doc["last_weeks"], doc["targets"]
    lines = ["# Weekly retraining against a frozen checkpoint", "", f"Command: `{doc['command']}`", "",
             "What each worker published, as a consumer holds it at weekly origins: 7-day forecasts of every SKU "
             "that sold in the period (WAPE = Σ|y − p50| / Σy; coverage: share of outcomes inside p10-p90; width = "
             "Σ(p90 − p10) / Σy). Both workers replay the same data through the worker's day loop; the retraining "
             "one runs `trendcast retrain`'s decision every "
             f"{doc['request']['every']} days from {iso(doc['request']['retrain_from'])}.", "",
             f"## Last {s['frozen']['weeks']} weeks", "",
             "| worker | WAPE 7d | coverage | width |", "|---|---:|---:|---:|"]
    for k in ("frozen", "retrained"):
        lines.append(f"| {k} | {s[k]['wape']:.4f} | {s[k]['coverage']:.3f} | {s[k]['width']:.3f} |")
    lines += ["", f"WAPE change: **{0.0 - doc['wape_gain_last_weeks']:+.1%}** (target: at least "
              f"{-t['wape_gain_at_least']:+.0%}); worst week against frozen: **{doc['worst_week_vs_frozen']:+.1%}** "
              f"(target: at most {t['worst_week_at_most']:+.0%}). Targets met: **{'yes' if t['met'] else 'no'}**.", "",
              "## By week", "", "| origin | units | frozen WAPE | retrained WAPE | frozen coverage | retrained coverage |",
              "|---|---:|---:|---:|---:|---:|"]
    for w in doc["weeks"]:
        f, r = w["frozen"], w["retrained"]
        lines.append(f"| {w['origin']} | {w['units']:.0f} | {f['wape']:.4f} | {r['wape']:.4f} | "
                     f"{f['coverage']:.3f} | {r['coverage']:.3f} |")
    lines += ["", "## Retrains", "", "| after day | promoted | serving afterwards | reason |", "|---|---|---|---|"]
    for r in doc["retrains"]:
        lines.append(f"| {r['day']} | {'yes' if r['promoted'] else 'no'} | {r['model']} | {r['reason']} |")
    return "\n".join(lines) + "\n"
