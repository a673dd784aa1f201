"""The edge of ``trendcast evaluate --scenarios``: a simulator run replayed day by day, with and without calibration.

Checks the request, loads the run (events, labels.csv, simulation.json),
the model and the worker's rules (from the settings, as the worker builds
them), replays every day up to ``--until`` and writes the report
(:mod:`stream_app.evaluation.drift_report`). Returns the lines the CLI prints.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import orjson

from stream_app.cli.evalcli import load_model, parse_choices
from stream_app.requests import DAY_MS, BadRequest, iso
from stream_app.evaluation.drift_metrics import RecoveryRules

SCENARIOS = ("level_shift", "promotion", "early_decline")
MIN_DAYS = 15  # the 14-day horizon must close inside the period


@dataclass(frozen=True)
class DriftRequest:
    """What ``trendcast evaluate --scenarios`` was asked; days since 1970-01-01, ``last_day`` inclusive.

    ``first_day``..``last_day`` is the scored period; the replay starts at
    the data's first day, as a worker started with the data would.
    """

    data: Path
    first_day: int
    last_day: int
    out: Path
    scenarios: tuple[str, ...] = SCENARIOS
    labels: Path | None = None
    model: str = "default"
    command: str = ""

    @property
    def labels_path(self) -> Path:
        return self.labels if self.labels is not None else self.data / "labels.csv"


def parse_scenarios(text: str) -> tuple[str, ...]:
    """``all`` or a comma-separated list of :data:`SCENARIOS`."""
    if text.strip() == "all":
        return SCENARIOS
    return parse_choices(text.replace("-", "_"), SCENARIOS, "--scenarios", ("all",))


def check(req: DriftRequest) -> dict:
    """Refuse a request that cannot run, before any work; the run's simulation.json."""
    if not req.data.is_dir():
        raise BadRequest(f"--scenarios needs a simulator folder (from 'trendcast simulate'), got {req.data}")
    params_path = req.data / "simulation.json"
    if not params_path.is_file():
        raise BadRequest(f"no simulation.json in {req.data}: --scenarios needs a 'trendcast simulate' folder")
    if not req.labels_path.is_file():
        raise BadRequest(f"no such labels file: {req.labels_path}")
    if req.last_day - req.first_day + 1 < MIN_DAYS:
        raise BadRequest(f"--from {iso(req.first_day)} --until {iso(req.last_day)}: the period must be at least "
                         f"{MIN_DAYS} days")
    try:
        params = json.loads(params_path.read_text())
    except ValueError as exc:
        raise BadRequest(f"{params_path}: not JSON ({exc})") from None
    if "start_date" not in params:
        raise BadRequest(f"{params_path}: no start_date; not a 'trendcast simulate' run")
    return params


def drift_scorer(spec: str, settings):
    """``(scorer, one line)``: the worker's scorer for ``ewma`` (its baseline), ``default`` or a checkpoint path (must load)."""
    from stream_app.worker.scoring import build_scorer

    if spec == "none":
        raise BadRequest("--scenarios replays the worker: it needs a forecaster (--model default, a checkpoint "
                         "or ewma)")
    if spec == "ewma":
        return (build_scorer(settings.model_copy(update={"forecaster": "baseline"})),
                "baseline-ewma (the worker's fallback forecaster)")
    _, status = load_model(spec)  # a path that does not load is the user's error, in one line
    if status.startswith("not evaluated"):
        raise BadRequest(f"--model {spec}: {status}; pass a checkpoint or --model ewma")
    scorer = build_scorer(settings.model_copy(update={"forecaster": "model",
                                                      "model_path": None if spec == "default" else Path(spec)}))
    return scorer, status


def catalog_categories(folder: Path) -> dict[str, str]:
    """sku -> catalog category (the worker's calibration group), the last record of each SKU winning."""
    from stream_app.data.eventfiles import event_files, read_lines

    path = event_files(folder).get("catalog")
    out: dict[str, str] = {}
    for _, raw in read_lines(path) if path is not None else ():
        rec = orjson.loads(raw)
        if isinstance(rec, dict) and isinstance(rec.get("sku"), str):
            out[rec["sku"]] = str(rec.get("category") or "")
    return out


def run_drift(req: DriftRequest, *, progress: bool = False, forecaster=None) -> list[str]:
    """Replay the run's days with the worker's rules, score the scenarios and alerts, write the report.

    ``forecaster``: use this one instead of loading ``req.model`` (tests).
    """
    from models.baselines import EwmaForecaster
    from models.fallback import GuardedForecaster
    from stream_app.data.replay import EventFiles
    from stream_app.data.samples import panel_from_series
    from stream_app.evaluation import dayloop, drift
    from stream_app.cli.forecastcli import CLOSE_DAYS
    from stream_app.core.rules import calibration_rules, tracker_rules
    from stream_app.core.scorer import Scorer
    from stream_app.evaluation.dataset import daily_series, label_stages
    from stream_app.evaluation.drift_report import headline, write_drift_report
    from stream_app.settings import SettingsError, load_settings
    from stream_app.core.ticks import UNKNOWN_GROUP

    params = check(req)
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise BadRequest(str(exc)) from None
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if forecaster is not None:
        scorer, model_status = Scorer(GuardedForecaster(forecaster, EwmaForecaster())), f"{forecaster.name} (given)"
    else:
        scorer, model_status = drift_scorer(req.model, settings)
    try:
        series = daily_series(req.data)
    except (ValueError, OSError) as exc:
        raise BadRequest(f"{req.data}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if not series.skus:
        raise BadRequest(f"{req.data}: no valid events")
    panel = panel_from_series(series)
    if req.last_day > panel.last_day or req.first_day < panel.first_day:
        raise BadRequest(f"--from {iso(req.first_day)} --until {iso(req.last_day)} is outside the data "
                         f"({iso(panel.first_day)} to {iso(panel.last_day)})")
    cats = catalog_categories(req.data)
    groups = np.array([cats.get(s) or UNKNOWN_GROUP for s in panel.skus], dtype=object)
    timings["load"] = time.perf_counter() - start

    days = np.arange(panel.first_day, req.last_day + 1, dtype=np.int64)

    def on_day(i: int, day: int) -> None:
        if progress and (i % 10 == 0 or i == len(days) - 1):
            print(f"day {i + 1}/{len(days)} {iso(day)}", file=sys.stderr, flush=True)

    mark = time.perf_counter()
    until_ms = (req.last_day + 1 + CLOSE_DAYS) * DAY_MS  # enough of the next days to close the last one
    out = dayloop.replay(settings, EventFiles(req.data, until_ms=until_ms).rows, list(panel.skus), days, scorer,
                         on_day)
    fc, runs, alerts, tracked = out.forecasts, out.runs, out.alerts, out.tracked
    timings["replay (the worker's day step, with and without calibration)"] = time.perf_counter() - mark
    cal_rules, trk_rules = calibration_rules(settings), tracker_rules(settings)
    published = {k: r.quantiles for k, r in runs.items()}
    actual = dayloop.outcomes(panel, days)
    stages = label_stages(req.labels_path, panel.skus, days)
    events = drift.scenario_events(params, panel.skus, groups)
    wanted = set(req.scenarios) | ({"promotion_end"} if "promotion" in req.scenarios else set())
    keys = [k for k in drift.SCENARIO_KEYS if k in events and k in wanted]
    rec = RecoveryRules()
    scen = drift.evaluate_scenarios({k: events[k] for k in keys}, fc, published, actual, req.first_day,
                                    req.last_day, rec)
    alert_scores, truth, matched = drift.evaluate_alerts(alerts, stages, fc, req.first_day, req.last_day)
    shifted = events.get("level_shift")
    timings["total"] = time.perf_counter() - start
    doc = {
        "dataset": f"{req.data.name} (simulator seed {params.get('seed')})", "command": req.command,
        "model_status": model_status,
        "period": {"from": iso(req.first_day), "until": iso(req.last_day), "replayed_from": iso(panel.first_day)},
        "skus": {"in_data": len(panel.skus),
                 "forecast_in_period": int(fc.forecast[days >= req.first_day].any(axis=0).sum())},
        "simulation": {k: params.get(k) for k in ("seed", "n_skus", "days", "start_date", "scenarios", "level_shift",
                                                  "promotion_days")},
        "rules": {"calibration": asdict(cal_rules), "tracker": asdict(trk_rules), "history_days": settings.history_days,
                  "recovery": asdict(rec), "alert_window_days": [-drift.ALERT_EARLY, drift.ALERT_LATE]},
        "overall": drift.overall(fc, published, actual, req.first_day, req.last_day),
        "shifted_category": (drift.overall(fc, published, actual, req.first_day, req.last_day, shifted.rows)
                             if shifted is not None else None),
        "scenarios": scen,
        "alerts": alert_scores,
        "drift_detections": [{"day": iso(d), "category": g} for d, g in runs["calibrated"].drifts],
        "non_finite_rows_from_ewma": fc.fallback_rows,
        "timings": {k: round(v, 2) for k, v in timings.items()},
    }
    paths = write_drift_report(req.out, doc, fc, truth, alerts, matched, stages, tracked, panel)
    return [f"model: {model_status}", *headline(doc), f"wrote {', '.join(str(p) for p in paths)} "
            f"in {timings['total']:.0f} s"]
