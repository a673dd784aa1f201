"""The edge of ``trendcast evaluate --cold-starts``: launches forecast from text alone, a report folder.

Reads the data (the UCI file through the replay adapter, or an event
folder), embeds every catalog text with the pretrained encoder, fine-tunes
a second encoder on the launches closed before ``--from``, and scores the
three cold-start forecasts of :mod:`stream_app.evaluation.cold_starts`
for the launches first sold from ``--from`` to ``--until``.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from stream_app.requests import BadRequest, iso

TARGET_GAIN = 0.10  # the target on new SKUs: text at least 10 % lower WAPE than no text


@dataclass(frozen=True)
class ColdStartRequest:
    """What was asked (days since 1970-01-01 UTC, ``last_day`` inclusive)."""

    data: Path
    source: str
    first_day: int
    last_day: int
    out: Path
    device: str = "auto"
    tune_layers: int = 1
    tune_epochs: int = 10
    command: str = ""


def run_cold_starts(req: ColdStartRequest) -> list[str]:
    """Score, write ``metrics.json`` and ``summary.md`` to ``req.out``; the lines to print."""
    from models.launch_prior import LAUNCH_DAYS, LAUNCH_K, LAUNCH_PRIOR, LAUNCHED_AFTER, MIN_LAUNCHES, launch_rows
    from models.layout import UNITS
    from models.text import TextEncoder
    from models.text_tuning import fine_tune
    from stream_app.data.replay import ADAPTERS
    from stream_app.data.samples import catalog_texts, panel_from_series
    from stream_app.evaluation.cold_starts import WAYS, cold_start_forecasts, scores
    from stream_app.evaluation.dataset import daily_series, event_folder

    if req.source not in (*ADAPTERS, "events"):
        raise BadRequest(f"unknown --source {req.source!r}; one of: {', '.join((*ADAPTERS, 'events'))}")
    if not req.data.exists():
        raise BadRequest(f"no such file or folder: {req.data}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="trendcast-cold-") as tmp:
        folder = event_folder(req.data, req.source, Path(tmp))
        panel = panel_from_series(daily_series(folder))
        by_sku = catalog_texts(folder)
    lo, hi = req.first_day - panel.first_day, req.last_day - panel.first_day
    # the first launch counted (a first sale LAUNCHED_AFTER days in) is known LAUNCH_DAYS later
    if lo < LAUNCHED_AFTER + LAUNCH_DAYS or lo > hi:
        raise BadRequest(f"--from {iso(req.first_day)}: give a day at least {LAUNCHED_AFTER + LAUNCH_DAYS} days "
                         f"after the data's first ({iso(panel.first_day)}) and not after --until")
    texts = [by_sku.get(s, "") for s in panel.skus]
    has_text = np.array([bool(t) for t in texts])
    units = panel.values[:, UNITS]
    first_index = np.where(panel.first_sale_day >= 0, panel.first_sale_day - panel.first_day, -1)
    frozen = TextEncoder(device=req.device).encode(texts)
    rows, totals = launch_rows(units, first_index, has_text, lo - 1, LAUNCHED_AFTER)
    if len(rows) < MIN_LAUNCHES:
        raise BadRequest(f"only {len(rows)} launches closed before --from {iso(req.first_day)}: start later")
    tuner = TextEncoder(device=req.device)
    report = fine_tune(tuner, [texts[i] for i in rows], totals, layers=req.tune_layers, epochs=req.tune_epochs)
    tuned = tuner.encode(texts)
    scored, quantiles, targets = cold_start_forecasts(units, first_index, has_text,
                                                      {"frozen": frozen, "fine_tuned": tuned}, lo, hi)
    metrics = {
        "request": {**asdict(req), "data": str(req.data), "out": str(req.out), "first_day": iso(req.first_day),
                    "last_day": iso(req.last_day)},
        "launches_trained_on": report.texts, "tune_losses": report.losses, "k": LAUNCH_K, "prior": LAUNCH_PRIOR,
        "scores": {way: scores(quantiles[way], targets) for way in WAYS},
        "seconds": round(time.monotonic() - started, 1),
    }
    req.out.mkdir(parents=True, exist_ok=True)
    (req.out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    lines = summary(metrics)
    (req.out / "summary.md").write_text("\n".join(lines) + "\n")
    return [*lines, f"report: {req.out / 'summary.md'}"]


def summary(metrics: dict) -> list[str]:
    """The report's markdown lines: one table per horizon, and the 7-day verdict against the no-text answer."""
    req = metrics["request"]
    s = metrics["scores"]
    lines = [f"# Cold starts: launches from {req['first_day']} to {req['last_day']}", "",
             f"`{req['command']}`" if req["command"] else "", "",
             f"Each launch forecast the day before its first sale from its text alone; {metrics['k']} neighbours, "
             f"prior weight {metrics['prior']}. Fine-tuned on {metrics['launches_trained_on']} earlier launches "
             f"({req['tune_layers']} top layer(s), {req['tune_epochs']} epochs; training pinball "
             f"{metrics['tune_losses'][0]:.3f} after the first epoch, {metrics['tune_losses'][-1]:.3f} after the last).",
             "", "| horizon | way | WAPE | pinball Σρ/Σy | p10-p90 coverage | width | launches |",
             "|---|---|---|---|---|---|---|"]
    for h in s["no_text"]:
        for way, by_h in s.items():
            v = by_h[h]
            lines.append(f"| {h} d | {way} | {v['wape']:.3f} | {v['pinball_scaled']:.3f} | "
                         f"{v['coverage_p10_p90']:.2f} | {v['width_p10_p90']:.2f} | {v['launches']} |")
    base = s["no_text"]["7"]["wape"]
    lines.append("")
    for way in ("frozen", "fine_tuned"):
        gain = 1 - s[way]["7"]["wape"] / base
        verdict = "met" if gain >= TARGET_GAIN else "missed"
        lines.append(f"{way}: 7-day WAPE {s[way]['7']['wape']:.3f} against {base:.3f} without text, {gain:.1%} lower "
                     f"(target {TARGET_GAIN:.0%}: {verdict})")
    return lines
