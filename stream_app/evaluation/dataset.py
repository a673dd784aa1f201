"""The edges of the backtest's input: a dataset to event files to a panel, and the stage truth.

Events are aggregated with the worker's decoder, every valid event once per
``(sku, event_id)`` (:func:`stream_app.data.offline.aggregate_files` without
worker rules): what a worker sees when its ``TRENDCAST_MAX_AHEAD_S`` spans
the data's gaps (the UCI shop's Christmas closure; docs/DATA.md).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from models.interface import STAGES
from stream_app.data.eventfiles import TopicFiles
from stream_app.data.offline import DailySeries, aggregate_files
from stream_app.data.replay import ADAPTERS

SOURCES = ("uci", "events")


def event_folder(data: Path, source: str, workdir: Path, until_ms: int | None = None) -> Path:
    """A folder of event files for ``data``: itself for ``events``, the replay adapter's output in ``workdir`` otherwise.

    ``until_ms``: a replayed file keeps only events before it (epoch ms); an
    events folder is returned whole (its readers cut it themselves).
    """
    if source == "events":
        return data
    with TopicFiles(workdir) as files:
        files.write_all(ADAPTERS[source](data, until_ms=until_ms).rows())
    return workdir


def daily_series(folder: Path) -> DailySeries:
    """The daily per-SKU series of every event file in ``folder``."""
    return aggregate_files(folder)


def label_stages(labels: Path, skus: list[str], origins: np.ndarray) -> np.ndarray:
    """``(len(origins), len(skus))`` true stage index (:data:`STAGES`) per origin day from a simulator labels.csv; -1 where none."""
    col = {s: i for i, s in enumerate(skus)}
    row = {int(d): i for i, d in enumerate(origins)}
    out = np.full((len(origins), len(skus)), -1, dtype=np.int64)
    index = {s: i for i, s in enumerate(STAGES)}
    with open(labels, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"day", "sku", "stage"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{labels} is not a simulator labels.csv: no column {', '.join(sorted(missing))}")
        for r in reader:
            i, j = row.get(int(r["day"])), col.get(r["sku"])
            if i is not None and j is not None:
                out[i, j] = index[r["stage"]]
    return out


def rule_stages(units: np.ndarray, first_day: int, origins: np.ndarray, rows: np.ndarray) -> np.ndarray | None:
    """Stages by the real-data labelling rule (:func:`models.labelling.stage_labels`) at each origin; None without it.

    ``units`` ``(n_skus, days)`` from ``first_day`` on, the whole panel.
    """
    try:
        from models.labelling import stage_labels
    except ImportError:
        return None
    labels = stage_labels(units[rows])
    return np.stack([labels[:, int(o) - first_day] for o in origins]).astype(np.int64)
