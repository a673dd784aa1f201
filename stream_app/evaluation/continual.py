"""A worker that retrains every week against the same worker with a frozen checkpoint, on what each publishes.

Both replay the data through the worker's own day loop
(:class:`~stream_app.data.offline_worker.OfflineWorker`, one partition, so
every day closes for every SKU before the next: a retrain between two days
sees what a fleet would have published by then). The retraining one also
makes the ``training-samples`` records the worker publishes, joins them
(:class:`~stream_app.data.stream_samples.SampleJoin`) and, every
``every`` days from ``first_retrain``, runs the retrain job's decision
(:func:`models.retraining.retrain`, champion/challenger on the newest two weeks
held back); a promoted network forecasts from the next day on, as a worker
serves one from its next tick. Each run's forecasts are then scored as a
consumer holds them (:func:`stream_app.evaluation.published.held`), week
by week.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import orjson

from models.checkpoint import stamped
from models.interface import HORIZONS
from models.neural import NeuralForecaster
from models.panel import Panel, targets_at
from models.retraining import RetrainRules, retrain
from stream_app.core.samples import decode
from stream_app.core.scorer import Scorer, serving
from stream_app.core.ticks import TickResult
from stream_app.data.offline_worker import OfflineWorker
from stream_app.data.stream_samples import SampleJoin
from stream_app.evaluation.published import held
from stream_app.settings import Settings

H7 = HORIZONS.index(7)


@dataclass
class Retrain:
    """One cycle: the day it ran after, the verdict, and the figures of both networks on the held-back days."""

    day: int
    promoted: bool
    reason: str
    figures: dict
    model: str
    days: dict


@dataclass
class Run:
    """A replay's forecasts by the day they were made (``sku`` and ``horizons`` of each message) and its retrains."""

    by_day: dict[int, list[dict]] = field(default_factory=lambda: defaultdict(list))
    retrains: list[Retrain] = field(default_factory=list)


def replay(settings: Settings, rows: Iterable[tuple[str, dict]], scorer: Scorer, *, keep_from: int,
           every: int | None = None, first_retrain: int | None = None, rules: RetrainRules = RetrainRules(),
           progress: Callable[[str], None] | None = None) -> Run:
    """Replay ``rows``; keep the forecasts made from day ``keep_from`` on; retrain every ``every`` days (None: frozen)."""
    worker = OfflineWorker(settings.model_copy(update={"partitions": 1}), scorer, samples=every is not None)
    run, join = Run(), SampleJoin()
    shipped = scorer.forecaster.primary  # the standing challenger of every cycle once a retrained one serves

    def on_tick(_partition: int, day: int, result: TickResult) -> None:
        if day >= keep_from:
            run.by_day[day] += [_held_fields(v) for _, v in result.forecasts]
        for _, value in result.samples:
            join.add(decode(value))
        if every is not None and day >= first_retrain and (day - first_retrain) % every == 0:
            run.retrains.append(_cycle(worker, join, day, rules, shipped))
            if progress:
                r = run.retrains[-1]
                progress(f"day {day}: {'promoted ' + r.model if r.promoted else 'kept'}: {r.reason}")

    worker.run(rows, on_tick)
    return run


def _held_fields(value: bytes) -> dict:
    m = orjson.loads(value)
    return {"sku": m["sku"], "horizons": m["horizons"], "version": m["model"]["version"]}


def _cycle(worker: OfflineWorker, join: SampleJoin, day: int, rules: RetrainRules,
           shipped: NeuralForecaster) -> Retrain:
    current = worker.scorer.forecaster.primary
    try:
        d = retrain(current.model, join.samples(worker.embeddings), rules, shipped=shipped.model)
    except ValueError as exc:
        return Retrain(day, False, str(exc), {}, current.version, {})
    if not d.promote:
        return Retrain(day, False, d.reason, d.figures, current.version, d.days)
    if d.candidate is shipped.model:  # a roll back: the shipped checkpoint serves again, under its own id
        net = shipped
    else:
        _, meta = stamped(d.candidate, {**current.meta, "parent": current.version})
        net = NeuralForecaster(d.candidate, meta["id"], device=current.device, meta=meta)
    worker.scorer = serving(worker.scorer, net, worker.scorer.confidence)
    return Retrain(day, True, d.reason, d.figures, net.version, d.days)


def weekly(runs: dict[str, Run], panel: Panel, rows: np.ndarray, origins: np.ndarray) -> list[dict]:
    """Per origin: each run's 7-day WAPE, p10-p90 coverage and width over ``rows`` (SKUs of ``panel``)."""
    skus = [panel.skus[i] for i in rows]
    y = np.stack([targets_at(panel, int(o), rows)[:, H7] for o in origins])
    out = [{"origin": int(o), "units": float(np.nansum(y[i]))} for i, o in enumerate(origins)]
    for name, run in runs.items():
        q, _ = held(run.by_day, skus, origins)
        q = q[:, :, H7]
        for i, row in enumerate(out):
            ok = np.isfinite(y[i])
            yy, lo, mid, hi = y[i][ok], q[i, ok, 0], q[i, ok, 1], q[i, ok, 2]
            units = float(yy.sum())
            row[name] = {"abs_error": float(np.abs(yy - mid).sum()), "covered": int(((yy >= lo) & (yy <= hi)).sum()),
                         "width": float((hi - lo).sum()), "pairs": int(ok.sum()),
                         "wape": float(np.abs(yy - mid).sum() / units) if units > 0 else None,
                         "coverage": float(((yy >= lo) & (yy <= hi)).mean()) if ok.any() else None}
    return out


def pooled(weeks: list[dict], name: str) -> dict:
    """WAPE, coverage and width of run ``name`` over ``weeks`` together."""
    units = sum(w["units"] for w in weeks)
    err = sum(w[name]["abs_error"] for w in weeks)
    pairs = sum(w[name]["pairs"] for w in weeks)
    return {"wape": err / units if units else None, "coverage": sum(w[name]["covered"] for w in weeks) / pairs
            if pairs else None, "width": sum(w[name]["width"] for w in weeks) / units if units else None,
            "weeks": len(weeks)}
