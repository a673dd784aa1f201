"""Panels from data at rest: a dataset's daily series as a :class:`models.panel.Panel`, catalog texts from event files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from models.interface import TEXT_DIM
from models.layout import FUNNEL, UNITS
from models.panel import Panel
from models.text import catalog_text
from stream_app.data.eventfiles import event_files, read_lines
from stream_app.data.offline import DailySeries


def panel_from_series(series: DailySeries, embeddings: dict[str, np.ndarray] | None = None) -> Panel:
    """The dense panel of ``series`` from its first to its last day; ``embeddings``: sku -> 384-d vector."""
    n = len(series.skus)
    if len(series) == 0:
        first = last = 0
    else:
        first, last = int(series.day.min()), int(series.day.max())
    values = series.dense(first, last).astype(np.float32)
    sold = series.counts[:, UNITS] > 0
    first_sale = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_sale, series.sku[sold], series.day[sold])
    first_sale = np.where(first_sale == np.iinfo(np.int64).max, -1, first_sale)
    text = np.zeros((n, TEXT_DIM), dtype=np.float32)
    has_text = np.zeros(n, dtype=bool)
    for i, sku in enumerate(series.skus):
        vec = (embeddings or {}).get(sku)
        if vec is not None:
            text[i] = vec
            has_text[i] = True
    has_funnel = bool(series.counts[:, FUNNEL].sum() > 0) if len(series) else False
    return Panel(values, list(series.skus), first, first_sale.astype(np.int64), text, has_text, has_funnel)


def catalog_texts(event_folder: str | Path) -> dict[str, str]:
    """sku -> the text it is embedded from (:func:`models.text.catalog_text`), from the folder's catalog file.

    A SKU with several catalog records keeps its last one, as the worker's table does.
    """
    path = event_files(event_folder).get("catalog")
    if path is None:
        return {}
    texts = {}
    for _, raw in read_lines(path):
        rec = orjson.loads(raw)
        if isinstance(rec, dict) and isinstance(rec.get("sku"), str):
            texts[rec["sku"]] = catalog_text(str(rec.get("title") or ""), str(rec.get("description") or ""),
                                             str(rec.get("category") or ""))
    return texts
