"""Write a simulation to files: events per topic, ground-truth labels, and the run's parameters."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from stream_app.data.eventfiles import TopicFiles
from stream_app.sim.catalogue import CATEGORY_NAMES
from stream_app.sim.scenarios import EARLY_DECLINE, SEASONAL
from stream_app.sim.simulator import LABEL_COLUMNS, Simulator

LABELS_FILE = "labels.csv"
PARAMS_FILE = "simulation.json"


def describe(sim: Simulator) -> dict:
    """The run's parameters and scenario draws, as JSON-ready values (days are window day indices)."""
    c = sim.cat
    return {
        "seed": sim.seed, "n_skus": sim.n_skus, "days": sim.days, "start_ms": sim.start_ms,
        "start_date": str(np.datetime64(sim.start_day, "D")), "scenarios": sorted(sim.scenarios.enabled),
        "level_shift": None if sim.shift_category < 0 else {
            "category": CATEGORY_NAMES[sim.shift_category], "day": sim.shift_day, "factor": sim.shift_factor},
        "conversion_shift": None if sim.conversion_day >= sim.days else {
            "day": sim.conversion_day, "factor": sim.conversion_factor},
        "promotion_days": sim.scenarios.promotion_days,
        "promotions": {sku: int(d) for sku, d in zip(sim.skus, sim.promo_start) if d >= 0},
        "early_declines": _cuts(sim, EARLY_DECLINE), "seasonal_declines": _cuts(sim, SEASONAL),
        "sku_kinds": {kind: int((c.kind == k).sum()) for k, kind in enumerate(("regular", "seasonal",
                                                                                "slow_mover", "early_decline"))},
    }


def _cuts(sim: Simulator, kind: int) -> dict[str, int]:
    """sku -> window day its true stage turns ``decline`` by a cut, for the SKUs of ``kind`` cut inside the window."""
    days = sim.cut_days()
    return {sku: int(d) for sku, d, k in zip(sim.skus, days, sim.cat.kind) if d >= 0 and k == kind}


def write_simulation(sim: Simulator, folder: str | Path, *, compress: bool = False,
                     on_day: Callable[[int, int], None] | None = None) -> dict[str, int]:
    """Write ``catalog``/``clicks``/``carts``/``orders`` JSON lines, ``labels.csv`` and ``simulation.json``.

    ``on_day(day, events_so_far)`` is called after each simulated day (for a
    progress bar). Returns lines written per topic plus ``labels`` rows.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([sim.seed, 1])  # the same stream as Simulator.events()
    written = 0
    with TopicFiles(folder, compress=compress) as files, open(folder / LABELS_FILE, "w", newline="") as lf:
        labels = csv.DictWriter(lf, fieldnames=LABEL_COLUMNS)
        labels.writeheader()
        n_labels = 0
        for rec in sim.catalog():
            files.write("catalog", rec)
        for day in range(sim.days):
            for kind, value in sim.day_events(rng, day, written):
                files.write(kind, value)
                written += 1
            for row in sim.labels(day):
                labels.writerow(row)
                n_labels += 1
            if on_day is not None:
                on_day(day, written)
        counts = dict(files.counts)
    (folder / PARAMS_FILE).write_text(json.dumps(describe(sim), indent=1) + "\n")
    return {**counts, "labels": n_labels}
