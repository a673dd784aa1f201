"""Stock positions for alerts: the newest on-hand count per SKU, days of cover, reorder sizes, low-cover alerts.

Pure apart from the record encoding. The worker keeps one record per SKU
in a changelog-backed table (``sku-inventory-v1``): the newest count by
``ts`` and the day a low-cover alert was last sent, so a SKU that stays
short is alerted once, not every day, and again only after its cover
recovered.

Days of cover use the stock as counted: trendcast does not subtract the
units sold since ``ts`` (the inventory system is the source of truth and
its counts may already include them); the alert carries ``on_hand_ts`` so a
bot can tell how fresh the count is.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from models.restock import days_of_cover, reorder_quantity
from stream_app.core.windows import DAY_MS

_RECORD = struct.Struct("<dqi")  # on_hand units, ts epoch ms, day of the last low-cover alert (-1 none)
NOT_ALERTED = -1


@dataclass(frozen=True)
class StockRules:
    """``lead_days``: restocking lead time, days; ``service_level``: chance the reorder covers lead-time
    demand; ``low_cover_days``: a growing SKU whose stock lasts fewer days than this is alerted."""

    lead_days: int = 7
    service_level: float = 0.95
    low_cover_days: float = 7.0


def encode(on_hand: float, ts: int, alerted_day: int = NOT_ALERTED) -> bytes:
    """One table record."""
    return _RECORD.pack(on_hand, ts, alerted_day)


def decode(record: bytes) -> tuple[float, int, int]:
    """``(on_hand, ts, alerted_day)`` of a table record."""
    return _RECORD.unpack(record)


def newer(record: bytes | None, ts: int) -> bool:
    """Whether a count taken at ``ts`` replaces ``record`` (counts arriving out of order are kept in ts order)."""
    return record is None or ts >= decode(record)[1]


def replace_count(record: bytes | None, on_hand: float, ts: int) -> bytes:
    """The record after a new count, keeping when the SKU was last alerted."""
    alerted = decode(record)[2] if record is not None else NOT_ALERTED
    return encode(on_hand, ts, alerted)


@dataclass
class StockView:
    """Stock positions of the rows of a micro-batch that have a count (``rows`` into the batch)."""

    rows: np.ndarray
    on_hand: np.ndarray
    ts: np.ndarray
    alerted: np.ndarray
    cover: np.ndarray  # days; inf when no demand is forecast
    reorder: np.ndarray  # units

    def fields(self, j: int, service_level: float) -> dict:
        """The alert's ``inventory`` object for view row ``j``."""
        cover = float(self.cover[j])
        return {"on_hand": float(self.on_hand[j]), "on_hand_ts": int(self.ts[j]),
                "days_of_cover": round(cover, 2) if np.isfinite(cover) else None,
                "reorder_qty": float(self.reorder[j]), "service_level": service_level}


def stock_view(records: list[bytes | None], lead: np.ndarray, rules: StockRules) -> StockView | None:
    """Days of cover and reorder quantities of the SKUs that have a record.

    ``lead``: ``(n, 3)`` calibrated p10/p50/p90 units over the lead time.
    None when no SKU of the batch has a count.
    """
    rows = np.array([i for i, r in enumerate(records) if r is not None], dtype=np.int64)
    if len(rows) == 0:
        return None
    on_hand, ts, alerted = (np.array(c) for c in zip(*(decode(records[i]) for i in rows)))
    q = lead[rows]
    return StockView(rows=rows, on_hand=on_hand, ts=ts, alerted=alerted,
                     cover=days_of_cover(on_hand, q[:, 1], rules.lead_days),
                     reorder=reorder_quantity(on_hand, q[:, 0], q[:, 1], q[:, 2], rules.service_level))


def low_cover(view: StockView, growing: np.ndarray, day: int, rules: StockRules) -> tuple[np.ndarray, np.ndarray]:
    """``(fire, alerted_day)`` per view row: which growing SKUs get a low-cover alert today, and their new mark.

    ``growing``: ``(n,)`` bool over the batch (confirmed stage is growth).
    A SKU fires when its cover falls below ``low_cover_days`` and it has no
    standing alert. The mark clears only when a count taken after the
    alert's day shows enough cover: a forecast that wobbles around the limit
    on unchanged stock must not alert the bot again and again.
    """
    short = view.cover < rules.low_cover_days
    fire = short & growing[view.rows] & (view.alerted == NOT_ALERTED)
    recounted = view.ts >= (view.alerted.astype(np.int64) + 1) * DAY_MS
    keep = (view.alerted != NOT_ALERTED) & (short | ~recounted)
    mark = np.where(fire, day, np.where(keep, view.alerted, NOT_ALERTED))
    return fire, mark
