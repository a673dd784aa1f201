"""Training data: datasets -> panels with stage truth -> samples split by time, without leakage.

A dataset is a folder of event files (the simulator's, with its
``labels.csv`` as stage truth) or a UCI Online Retail file (through the
replay adapter; stages by :func:`models.labelling.stage_labels`). Samples
are (SKU, origin day) pairs: the worker's features at the end of the origin
(:func:`models.panel.features_at`) and the units sold after it.

Split by time: a training origin's targets end on ``train_until`` at the
latest; validation origins start there and their targets end by
``valid_until``; nothing later is read. Rule-based stage labels of each
split come from the sales curve cut at that split's last day, so no label
sees past it.
"""

from __future__ import annotations

import csv
import hashlib
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from models.interface import HORIZONS, STAGES
from models.labelling import stage_labels
from models.layout import HISTORY_DAYS, UNITS
from models.panel import Panel, features_at, targets_at
from models.training import Samples
from stream_app.data.samples import catalog_texts, panel_from_series
from stream_app.data.eventfiles import TopicFiles
from stream_app.data.offline import aggregate_files
from stream_app.data.replay import ADAPTERS

DAY_MS = 86_400_000
CENSORED_DAYS = 14  # a SKU selling within this many days of the data's start launched before it: no rule labels


@dataclass(frozen=True)
class Dataset:
    """A panel with its stage truth: ``stages`` ``(n_skus, n_days)`` (-1 unknown) or None (use the rule)."""

    name: str
    panel: Panel
    stages: np.ndarray | None


def load_dataset(path: Path, source: str = "auto", encoder=None, until_day: int | None = None) -> Dataset:
    """Read one dataset (``source`` ``events``, ``uci`` or ``auto``: a folder is events, a file UCI).

    ``encoder``: a :class:`models.text.TextEncoder` for product texts, or None (no text).
    ``until_day``: the last day to read (days since 1970-01-01): a replayed
    file drops later rows as it parses them (its test months never reach a
    panel); an event folder that starts before it is cut after it.
    """
    path = Path(path)
    if source == "auto":
        source = "events" if path.is_dir() else "uci"
    with tempfile.TemporaryDirectory(prefix="trendcast-train-") as tmp:
        folder = path
        if source != "events":
            folder = Path(tmp)
            until_ms = None if until_day is None else (until_day + 1) * DAY_MS
            with TopicFiles(folder) as files:
                files.write_all(ADAPTERS[source](path, until_ms=until_ms).rows())
        series = aggregate_files(folder)
        texts = catalog_texts(folder) if encoder is not None else {}
    known = [s for s in series.skus if s in texts]
    vectors = encoder.encode([texts[s] for s in known]) if known else []
    panel = panel_from_series(series, dict(zip(known, vectors)))
    if until_day is not None and panel.first_day <= until_day < panel.last_day:
        panel = cut_panel(panel, until_day)
    labels = path / "labels.csv" if source == "events" else None
    stages = read_stage_truth(labels, panel) if labels is not None and labels.is_file() else None
    return Dataset(path.name, panel, stages)


def cut_panel(panel: Panel, last_day: int) -> Panel:
    """``panel`` without the days after ``last_day``; a first sale after it is unknown (-1)."""
    keep = last_day - panel.first_day + 1
    first_sale = np.where(panel.first_sale_day <= last_day, panel.first_sale_day, -1)
    return replace(panel, values=panel.values[:, :, :keep].copy(), first_sale_day=first_sale)


def read_stage_truth(labels: Path, panel: Panel) -> np.ndarray:
    """``(n_skus, n_days)`` true stage per panel SKU and day from a simulator ``labels.csv``; -1 where none."""
    row = {s: i for i, s in enumerate(panel.skus)}
    index = {s: i for i, s in enumerate(STAGES)}
    n_days = panel.values.shape[2]
    out = np.full((len(panel.skus), n_days), -1, dtype=np.int64)
    with open(labels, newline="") as f:
        for r in csv.DictReader(f):
            i, d = row.get(r["sku"]), int(r["day"]) - panel.first_day
            if i is not None and 0 <= d < n_days:
                out[i, d] = index[r["stage"]]
    return out


def rule_stages(panel: Panel, last_day: int) -> np.ndarray:
    """``(n_skus, n_days)`` stages by the labelling rule on units up to ``last_day``; -1 after it and for censored SKUs."""
    n_days = panel.values.shape[2]
    cut = max(0, min(last_day - panel.first_day + 1, n_days))
    out = np.full((len(panel.skus), n_days), -1, dtype=np.int64)
    out[:, :cut] = stage_labels(panel.values[:, UNITS, :cut])
    censored = (panel.first_sale_day >= 0) & (panel.first_sale_day < panel.first_day + CENSORED_DAYS)
    out[censored] = -1
    return out


def fingerprint(datasets: list[Dataset]) -> str:
    """16 hex digits of a hash of every panel's SKUs, days and values."""
    h = hashlib.sha256()
    for d in datasets:
        h.update("\n".join(d.panel.skus).encode())
        h.update(np.int64(d.panel.first_day).tobytes())
        h.update(np.ascontiguousarray(d.panel.values).tobytes())
    return h.hexdigest()[:16]


def split_days(panel: Panel, train_until: int | None, valid_until: int | None) -> tuple[int, int]:
    """``(train_until, valid_until)`` days for ``panel``: the given days when the panel spans them, else 70 % / 85 % of it."""
    first, last = panel.first_day, panel.last_day
    if train_until is not None and valid_until is not None and first < train_until < valid_until <= last:
        return train_until, valid_until
    span = last - first
    return first + int(0.70 * span), first + int(0.85 * span)


def build_samples(data: Dataset, first_origin: int, last_target_day: int, every: int = 1,
                  history_days: int = HISTORY_DAYS, stage_until: int | None = None) -> Samples:
    """Samples at origins ``first_origin, +every, ...`` whose 14-day targets end by ``last_target_day``.

    Only SKUs with an event in the history window (the ones the worker
    holds) are kept. Stage labels: the dataset's truth, or the rule on the
    curve cut at ``stage_until`` (default ``last_target_day``). A SKU
    selling from the data's first days has no label while the window
    reaches before the data: its history there looks like a launch, which
    its true stage (often decline) would teach the stage head to ignore.
    """
    panel = data.panel
    stages = data.stages if data.stages is not None else rule_stages(panel, stage_until or last_target_day)
    censored = (panel.first_sale_day >= 0) & (panel.first_sale_day < panel.first_day + CENSORED_DAYS)
    origins = np.arange(first_origin, last_target_day - max(HORIZONS) + 1, every)
    parts = []
    for origin in origins:
        lo = max(origin - history_days + 1 - panel.first_day, 0)
        active = np.flatnonzero(panel.values[:, :, lo : origin - panel.first_day + 1].any(axis=(1, 2)))
        if len(active) == 0:
            continue
        f = features_at(panel, int(origin), history_days, rows=active)
        cut_short = origin - history_days + 1 < panel.first_day
        stage = np.where(censored[active] & cut_short, -1, stages[active, origin - panel.first_day])
        parts.append((f, active, int(origin), targets_at(panel, int(origin), active), stage))
    if not parts:
        raise ValueError(f"{data.name}: no samples between origin {first_origin} and target day {last_target_day}")
    return Samples(
        history=np.concatenate([p[0].history for p in parts]),
        age=np.concatenate([p[0].days_since_first_sale for p in parts]),
        weekday=np.concatenate([p[0].as_of_weekday for p in parts]),
        sku_row=np.concatenate([p[1] for p in parts]),
        origin=np.concatenate([np.full(len(p[1]), p[2]) for p in parts]),
        targets=np.concatenate([p[3] for p in parts]),
        stage=np.concatenate([p[4] for p in parts]),
        text=panel.text,
        has_text=panel.has_text,
        stage_truth=data.stages is not None,
    )
