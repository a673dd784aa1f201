"""The edge of ``trendcast evaluate``: arguments to a backtest run, progress, the report folder, summary lines.

The backtest, scores and report are in :mod:`stream_app.evaluation`; this
module checks the request, loads the data and the model, times each step
and returns the lines the CLI prints.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.layout import UNITS
from stream_app.evaluation.anchors import baseline_forecasters
from stream_app.evaluation.backtest import HISTORY_DAYS, origin_days, run_backtest, skus_with_sales
from stream_app.evaluation.dataset import SOURCES, daily_series, event_folder, label_stages, rule_stages
from stream_app.evaluation.gbm import lightgbm_missing
from stream_app.evaluation.metrics import KEY_HORIZON, sku_ages, summarise
from stream_app.evaluation.published import by_age, launch_scores
from stream_app.evaluation.report import write_report
from stream_app.requests import BadRequest, iso

SKU_DEFINITION = "at least one unit sold on a day some origin forecasts: from the day after --from to --until"


@dataclass(frozen=True)
class EvalRequest:
    """What ``trendcast evaluate`` was asked; days are days since 1970-01-01 UTC, ``last_day`` inclusive."""

    data: Path
    source: str
    first_day: int
    last_day: int
    out: Path
    labels: Path | None = None
    model: str = "default"
    every: int = 7
    baselines: tuple[str, ...] = ()
    named_baselines: bool = False  # listed by name (not the default set): one that cannot run is an error
    max_skus: int | None = None
    ablations: tuple[str, ...] = ()  # keys of stream_app.evaluation.ablation.ABLATIONS
    command: str = ""


def parse_choices(text: str, known, option: str, words: tuple[str, ...] = ()) -> tuple[str, ...]:
    """A comma-separated list of ``known`` names; the error lists ``words`` (e.g. ``all``) and ``known``."""
    chosen = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in chosen if k not in known]
    if unknown or not chosen:
        raise BadRequest(f"{option}: unknown {', '.join(unknown) or 'empty list'}; "
                         f"choose from {', '.join([*words, *known])}")
    return chosen


def parse_baselines(text: str) -> tuple[str, ...]:
    """``all`` or a comma-separated list of reference keys (``none`` for the model alone)."""
    known = list(baseline_forecasters())
    if text == "all":
        return tuple(known)
    if text == "none":
        return ()
    return parse_choices(text, known, "--baselines", ("all", "none"))


def parse_ablations(text: str) -> tuple[str, ...]:
    """``all``, ``none`` or a comma-separated list of inputs to take away from the model (``text``, ``clicks``)."""
    from stream_app.evaluation.ablation import ABLATIONS

    if text == "all":
        return tuple(ABLATIONS)
    if text == "none":
        return ()
    return parse_choices(text, list(ABLATIONS), "--ablations", ("all", "none"))


def usable_baselines(req: EvalRequest) -> tuple[tuple[str, ...], list[str]]:
    """The baselines that can run here, and a note for each one of the default set left out.

    Only the LightGBM anchor has an optional dependency: named in
    ``--baselines`` without ``lightgbm`` installed, it is the user's error;
    in the default set it is skipped with a note.
    """
    why = lightgbm_missing() if "lightgbm" in req.baselines else None
    if why is None:
        return req.baselines, []
    if req.named_baselines:
        raise BadRequest(f"--baselines lightgbm: {why}")
    return tuple(b for b in req.baselines if b != "lightgbm"), [f"note: lightgbm baseline skipped, {why}"]


def check(req: EvalRequest) -> None:
    """Refuse a request that cannot run, before any work."""
    if req.source not in SOURCES:
        raise BadRequest(f"unknown --source {req.source!r}; one of: {', '.join(SOURCES)}")
    if not req.data.exists():
        raise BadRequest(f"no such file or folder: {req.data}")
    if req.source == "events" and not req.data.is_dir():
        raise BadRequest(f"--source events needs a folder of event files, got {req.data}")
    if req.labels is not None and not req.labels.is_file():
        raise BadRequest(f"no such labels file: {req.labels}")
    if req.every < 1:
        raise BadRequest(f"--origins-every must be at least 1 day, got {req.every}")
    try:
        origin_days(req.first_day, req.last_day, req.every)
    except ValueError as exc:
        raise BadRequest(f"--from {iso(req.first_day)} --until {iso(req.last_day)}: {exc}") from None
    usable_baselines(req)


def load_model(spec: str):
    """``(forecaster or None, one line saying what was loaded or why not)``.

    ``default``: the committed checkpoint, or None with the reason when it
    is not there (the baselines still run); a path that does not load is
    the user's error; ``none`` evaluates the baselines only.
    """
    if spec == "none":
        return None, "not evaluated (--model none)"
    try:
        from models.neural import DEFAULT_CHECKPOINT, CheckpointError, load_forecaster
    except ImportError as exc:
        if spec == "default":
            return None, f"not evaluated: the neural model is not in this checkout ({exc})"
        raise BadRequest(f"--model {spec}: the neural model is not in this checkout ({exc})") from None
    path = DEFAULT_CHECKPOINT if spec == "default" else Path(spec)
    try:
        f = load_forecaster(path)
    except (CheckpointError, OSError) as exc:
        if spec == "default":
            return None, f"not evaluated: the default checkpoint does not load ({str(exc).splitlines()[0]})"
        raise BadRequest(f"--model {spec}: {str(exc).splitlines()[0]}") from None
    return f, f"{f.name} version {f.version} from {path}"


def _embeddings(folder: Path, skus: tuple[str, ...]):
    """Product-text embeddings of every SKU with a catalog record (the model's text input)."""
    from stream_app.data.samples import catalog_texts
    from models.text import TextEncoder

    texts = catalog_texts(folder)
    known = [s for s in skus if s in texts]
    vectors = TextEncoder().encode([texts[s] for s in known]) if known else np.zeros((0, 384), np.float32)
    return dict(zip(known, vectors))


PUBLISHED = "published"  # the backtest's name for what the worker publishes (calibrated, as consumers hold it)


def add_published(bt, panel, folder: Path, req: EvalRequest,
                  origins: np.ndarray) -> tuple[np.ndarray, dict, dict, dict]:
    """Replay the worker's day loop over the data; put the forecasts consumers hold at each origin into ``bt``.

    Returns their ages ``(O, R)`` in days (-1: none held), the published
    forecasts and the published stage alerts by day, and the scores of what
    every SKU of ``panel`` holds, sold or not
    (:func:`~stream_app.evaluation.published.every_sku_held`). The worker's
    settings come from the environment (``TRENDCAST_*``), its model from
    ``--model``.
    """
    from models.panel import targets_at
    from stream_app.evaluation.published import every_sku_held, held
    from stream_app.cli.forecastcli import CLOSE_DAYS
    from stream_app.data.offline_worker import published
    from stream_app.data.replay import EventFiles
    from stream_app.worker.scoring import build_scorer
    from stream_app.settings import load_settings

    settings = load_settings(forecaster="model", **({} if req.model == "default" else {"model_path": req.model}))
    rows = EventFiles(folder, until_ms=(int(origins[-1]) + 1 + CLOSE_DAYS) * 86_400_000).rows()
    by_day, alerts = published(settings, rows, set(range(int(origins[0]) - 60, int(origins[-1]) + 1)),
                               scorer=build_scorer(settings))
    quantiles, ages = held(by_day, list(panel.skus), origins)  # every SKU once; the backtest's rows are some
    every = every_sku_held(quantiles, ages, np.stack([targets_at(panel, int(o)) for o in origins]))
    bt.quantiles[PUBLISHED] = quantiles[:, bt.rows]
    bt.stage_probs[PUBLISHED] = np.full((len(origins), len(bt.skus), 4), 0.25)
    bt.predicts_stages[PUBLISHED] = False
    bt.seconds[PUBLISHED] = 0.0
    return ages[:, bt.rows], by_day, alerts, every


def stage_agreement(panel, rows: np.ndarray, bt, origins: np.ndarray, by_day: dict | None, alerts: dict | None,
                    stages, truth: str | None, model: str | None, req: EvalRequest) -> dict:
    """The stage consistency table (published, model argmax, stage truth), the published stage changes' precision
    and how well their confidence reads as a probability of being right (against the simulator's labels when
    given, else the hindsight rule)."""
    from models.confidence import reliability
    from models.labelling import stage_labels
    from stream_app.evaluation.stages import alert_outcomes, alert_precision, consistency, held_stages, stage_changes

    units, first_sale = panel.values[rows, 3, :], panel.first_sale_day[rows]
    table = {}
    if by_day is not None:
        table[PUBLISHED] = consistency(held_stages(by_day, bt.skus, origins), units, panel.first_day, first_sale, origins)
    if model is not None:
        argmax = bt.stage_probs[model].argmax(axis=-1)
        table[f"{model} (argmax)"] = consistency(argmax, units, panel.first_day, first_sale, origins)
    if stages is not None:
        table[truth] = consistency(stages, units, panel.first_day, first_sale, origins)
    out: dict = {"stage_consistency": table}
    if by_day is not None:
        if req.labels is not None:
            days = np.arange(panel.first_day, panel.last_day + 1)
            labels, judge = label_stages(req.labels, bt.skus, days).T, "simulator labels"
        else:
            labels, judge = stage_labels(units), "models.labelling.stage_labels over the whole data"
        changes = stage_changes(by_day, bt.skus, req.first_day, req.last_day)
        out["stage_alert_precision"] = {**alert_precision(changes, labels, panel.first_day), "truth": judge}
        conf, right = alert_outcomes(alerts or {}, bt.skus, labels, panel.first_day, req.first_day, req.last_day)
        out["stage_alert_confidence"] = {**reliability(conf, right), "truth": judge}
    return out


def run_evaluate(req: EvalRequest, *, progress: bool = False) -> list[str]:
    """Backtest the model and the chosen baselines on ``req.data``; write the report to ``req.out``."""
    from stream_app.data.samples import panel_from_series

    check(req)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    model, model_status = load_model(req.model)
    baselines, notes = usable_baselines(req)
    lines = [f"model: {model_status}", *notes]
    with tempfile.TemporaryDirectory(prefix="trendcast-eval-") as tmp:
        try:
            folder = event_folder(req.data, req.source, Path(tmp))
            series = daily_series(folder)
        except (ValueError, OSError) as exc:
            raise BadRequest(f"{req.data}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        timings["load and aggregate events"] = time.perf_counter() - start
        if not series.skus:
            raise BadRequest(f"{req.data}: no valid events")
        mark = time.perf_counter()
        embeddings = _embeddings(folder, series.skus) if model is not None else None
        if model is not None:
            timings["text embeddings"] = time.perf_counter() - mark
        return _evaluate_panel(req, panel_from_series(series, embeddings), model, model_status, baselines, notes,
                               lines, timings, start, folder, progress)


def _ablations(req: EvalRequest, panel, rows: np.ndarray, model, notes: list[str]) -> dict:
    """The model with each asked-for input taken away, by row name; a note for an input the data lacks."""
    from stream_app.evaluation.ablation import ABLATIONS, Ablated, inputs_present

    present = inputs_present(panel, rows)
    out = {}
    for drop in req.ablations:
        if present[drop]:
            f = Ablated(model, drop)
            out[f.name] = f
        else:
            notes.append(f"note: ablation '{ABLATIONS[drop]}' left out, the evaluated SKUs have no such input")
    return out


def _evaluate_panel(req: EvalRequest, panel, model, model_status: str, baselines, notes: list[str],
                    lines: list[str], timings: dict, start: float, folder: Path, progress: bool) -> list[str]:
    """The backtest, the published stream and the report of :func:`run_evaluate` on the loaded data."""
    if req.last_day > panel.last_day:
        raise BadRequest(f"--until {iso(req.last_day)} is after the data's last day {iso(panel.last_day)}")
    if req.first_day - HISTORY_DAYS + 1 < panel.first_day:
        lines.append(f"warning: the first origins have less than {HISTORY_DAYS} days of data before them "
                     f"(data from {iso(panel.first_day)})")
    origins = origin_days(req.first_day, req.last_day, req.every)
    with_sales = skus_with_sales(panel, req.first_day, req.last_day)
    rows = with_sales[: req.max_skus] if req.max_skus else with_sales
    if len(rows) == 0:
        raise BadRequest(f"no SKU sold anything between {iso(req.first_day)} and {iso(req.last_day)}")
    forecasters = {**({model.name: model} if model is not None else {}),
                   **{f.name: f for k, f in baseline_forecasters().items() if k in baselines}}
    ablated = _ablations(req, panel, rows, model, notes) if model is not None else {}
    forecasters.update(ablated)

    def on_origin(i: int, day: int) -> None:
        if progress:
            print(f"origin {i + 1}/{len(origins)} {iso(day)}", file=sys.stderr, flush=True)

    mark = time.perf_counter()
    bt = run_backtest(panel, forecasters, origins, rows, on_origin=on_origin)
    timings["backtest"] = time.perf_counter() - mark
    published, by_day, alerts, every = None, None, None, None
    if model is not None:
        mark = time.perf_counter()
        published, by_day, alerts, every = add_published(bt, panel, folder, req, origins)
        timings["published stream (the worker's day loop, replayed)"] = time.perf_counter() - mark
    timings["features"] = bt.feature_seconds
    timings.update({f"fit {n} (every origin)": s for n, s in bt.fit_seconds.items()})
    timings.update({f"predict {n}": s for n, s in bt.seconds.items()})
    if req.labels is not None:
        stages, truth = label_stages(req.labels, bt.skus, origins), "simulator labels"
    else:
        stages = rule_stages(panel.values[:, 3, :], panel.first_day, origins, rows)
        truth = "models.labelling.stage_labels rule" if stages is not None else None
    metrics = summarise(bt, model=model.name if model is not None else None, stages=stages,
                        ages=sku_ages(panel.first_sale_day[rows], origins), ours=(PUBLISHED, *ablated))
    if ablated:
        metrics["ablations"] = {"model": model.name, "rows": {f.drop: name for name, f in ablated.items()}}
    if published is not None:
        metrics["published_by_age"] = {str(h): by_age(bt.quantiles[PUBLISHED], published, bt.targets, h)
                                       for h in (7, 14)}
        metrics["published_every_sku"] = every
        launches = launch_scores(by_day, list(panel.skus), panel.values[:, UNITS, :], panel.first_day, req.first_day,
                                 req.last_day)
        if launches is not None:
            metrics["published_launches"] = launches
    metrics.update(stage_agreement(panel, rows, bt, origins, by_day, alerts, stages, truth,
                                   model.name if model is not None else None, req))
    timings["total"] = time.perf_counter() - start
    meta = {
        "dataset": f"{req.data.name} ({req.source})", "command": req.command, "model_status": model_status,
        "period": {"from": iso(req.first_day), "until": iso(req.last_day), "every_days": req.every,
                   "origins": [iso(d) for d in origins]},
        "history_days": HISTORY_DAYS,
        "skus": {"in_data": len(panel.skus), "with_sales": int(len(with_sales)), "evaluated": int(len(rows)),
                 "definition": SKU_DEFINITION},
        "stage_truth": truth,
        "baseline_notes": notes,
        "fallbacks": {n: f.fallbacks for n, f in forecasters.items() if hasattr(f, "fallbacks")},
        "non_finite_rows_from_ewma": bt.fallback_rows,
        "timings": {k: round(v, 2) for k, v in timings.items()},
    }
    paths = write_report(req.out, bt, metrics, meta)
    key = str(KEY_HORIZON)
    for name, e in metrics["forecasters"].items():
        lines.append(f"{name}: WAPE {KEY_HORIZON} d {e['horizons'][key]['wape']:.3f}")
    if metrics["model"] is not None and metrics["model_wape_7d_improvement"] is not None:
        imp = metrics["model_wape_7d_improvement"]
        lines.append(f"model vs best baseline ({metrics['best_baseline_7d']}) at {KEY_HORIZON} d: "
                     f"{100 * abs(imp):.1f} % {'lower' if imp >= 0 else 'higher'} WAPE")
    if PUBLISHED in metrics["wape_7d_improvement"]:
        imp = metrics["wape_7d_improvement"][PUBLISHED]
        lines.append(f"published forecasts (what consumers hold) vs best baseline ({metrics['best_baseline_7d']}) "
                     f"at {KEY_HORIZON} d: {100 * abs(imp):.1f} % {'lower' if imp >= 0 else 'higher'} WAPE")
    lines.append(f"wrote {', '.join(str(p) for p in paths)} in {timings['total']:.0f} s")
    return lines
