"""Offline aggregation: event files -> the daily per-SKU series the worker holds.

Training and evaluation read the same numbers the worker keeps in its
windows (:mod:`stream_app.core.windows`): per SKU and UTC day, clicks, cart adds,
cart removes (units), units sold, revenue (currency units) and order lines
(order events, whatever their qty). The rules are
the worker's, not a copy of them:

* every event is decoded and validated by the worker's own decoder
  (:func:`stream_app.core.decode.decode`); invalid ones are dropped and counted by
  its reason code;
* with :class:`WorkerRules`, every event is judged by the worker's own
  event-time clock (:class:`stream_app.core.clock.PartitionClock`) and order of
  decisions (:mod:`stream_app.core.sequence`), one per Kafka partition (Kafka's
  default partitioner on the SKU key), in each topic's file order, which is
  the order a producer sends it in: events the worker dead-letters as
  ``late`` or ``future`` are dropped here too, and a
  repeated ``event_id`` within the last ``dedup_ids`` events of a SKU is a
  ``duplicate``. Without rules every valid event counts once per
  ``(sku, event_id)``;
* the aggregation itself is a vectorised group-by, independent of the
  worker's ring buffers, and keeps every day (the worker keeps the last
  ``history_days`` days before each SKU's newest event: :meth:`DailySeries.window`).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from stream_app.core.clock import FUTURE, LATE, ON_TIME, PartitionClock
from stream_app.core.decode import KINDS, Invalid, decode
from stream_app.data.eventfiles import event_files, read_lines
from stream_app.core.partitioning import partition_for
from stream_app.core.sequence import decide_queue, settle_queue
from stream_app.core.windows import CHANNELS, COUNT_ROWS, DAY_MS, ORDER_LINES_ROW, REVENUE, event_id_hash

COUNT_CHANNELS = tuple(CHANNELS[ch] for ch in COUNT_ROWS)  # clicks, cart_adds, cart_removes, units, order_lines


@dataclass(frozen=True)
class WorkerRules:
    """The worker's event-time and dedup settings (``TRENDCAST_PARTITIONS``, ``_GRACE_S``, ...), in ms."""

    partitions: int = 4
    grace_ms: int = 3_600_000
    max_ahead_ms: int = 3 * DAY_MS
    future_confirm: int = 100
    dedup_ids: int = 16


@dataclass(frozen=True)
class DailySeries:
    """Daily per-SKU series in long form: one row per SKU and day with at least one event.

    Rows are sorted by SKU, then day. ``sku`` indexes ``skus``; ``day`` is days
    since 1970-01-01 UTC; ``counts`` is ``(n, 5)`` int64 (clicks, cart adds,
    cart removes, units, order lines: the worker's counts ring rows,
    :data:`COUNT_CHANNELS`); ``revenue`` ``(n,)`` float64, summed in each
    topic's file order like the worker does; ``dropped`` counts the events
    not counted, by reason.
    """

    skus: tuple[str, ...]
    sku: np.ndarray
    day: np.ndarray
    counts: np.ndarray
    revenue: np.ndarray
    dropped: dict[str, int]

    def __len__(self) -> int:
        return len(self.day)

    def newest_day(self) -> np.ndarray:
        """Per SKU (indexed like ``skus``), the newest day with an event."""
        out = np.full(len(self.skus), np.iinfo(np.int64).min)
        np.maximum.at(out, self.sku, self.day)
        return out

    def window(self, history_days: int) -> "DailySeries":
        """The rows the worker still holds: the last ``history_days`` days up to each SKU's newest day."""
        keep = self.day > self.newest_day()[self.sku] - history_days
        return DailySeries(self.skus, self.sku[keep], self.day[keep], self.counts[keep], self.revenue[keep],
                           self.dropped)

    def rows(self) -> dict[tuple[str, int], tuple[int, int, int, int, float, int]]:
        """``{(sku, day): (clicks, cart adds, cart removes, units, revenue, order lines)}`` for exact comparisons.

        The channels in the order of a worker history (:data:`stream_app.core.windows.CHANNELS`).
        """
        lines = ORDER_LINES_ROW
        return {(self.skus[s], int(d)): (*(int(x) for x in c[:lines]), float(r), int(c[lines]))
                for s, d, c, r in zip(self.sku, self.day, self.counts, self.revenue)}

    def totals(self) -> dict[str, dict[str, float]]:
        """Per SKU, each channel summed over all rows (like :meth:`SkuWindow.totals`)."""
        counts = np.zeros((len(self.skus), len(COUNT_ROWS)), dtype=np.int64)
        np.add.at(counts, self.sku, self.counts)
        revenue = np.zeros(len(self.skus))
        np.add.at(revenue, self.sku, self.revenue)
        out = {}
        for i, s in enumerate(self.skus):
            t = {**dict(zip(COUNT_CHANNELS, map(int, counts[i]))), "revenue": float(revenue[i])}
            out[s] = {name: t[name] for name in CHANNELS}
        return out

    def dense(self, first_day: int, last_day: int) -> np.ndarray:
        """``(n_skus, 6, days)`` float64 array (channels of :data:`stream_app.core.windows.CHANNELS`) for days
        ``first_day..last_day`` (inclusive), zeros filled in."""
        n_days = last_day - first_day + 1
        out = np.zeros((len(self.skus), len(CHANNELS), n_days))
        inside = (self.day >= first_day) & (self.day <= last_day)
        s, d = self.sku[inside], self.day[inside] - first_day
        out[s[:, None], np.array(COUNT_ROWS)[None, :], d[:, None]] = self.counts[inside]
        out[s, REVENUE, d] = self.revenue[inside]
        return out


class WorkerClocks:
    """The worker's event-time rules offline: one clock and one queue per topic for each partition.

    Events are offered in each topic's send order and decided as the worker
    decides them (:mod:`stream_app.core.sequence`): a suspect waits for the events
    after it. Offline no day closes, so nothing waits for one; :meth:`finish`
    settles what is still waiting when the input ends, as an idle topic is
    settled in the worker, against the newest event time of all partitions.
    """

    def __init__(self, rules: WorkerRules) -> None:
        self.rules = rules
        self._clocks: dict[int, PartitionClock] = {}
        self._queues: dict[int, tuple[deque, deque, deque]] = {}

    def offer(self, kind: int, key: bytes, ts: int, item: Any) -> list[tuple[Any, int]]:
        """Take one event of source ``kind``; returns the ``(item, verdict)`` pairs decided now, in order."""
        part = partition_for(key, self.rules.partitions)
        clock = self._clocks.get(part)
        if clock is None:
            r = self.rules
            clock = self._clocks[part] = PartitionClock(r.grace_ms, r.max_ahead_ms, r.future_confirm)
            self._queues[part] = (deque(), deque(), deque())
        clock.heard(kind, (ts,), 0.0)
        queue = self._queues[part][kind]
        queue.append((ts, item))
        return [(it, v) for (_, it), v in decide_queue(clock, kind, queue, _first, lead=False)]

    def finish(self) -> list[tuple[Any, int]]:
        """Decide what still waits at the end of the input."""
        newest = [c.newest for c in self._clocks.values() if c.newest is not None]
        reach = max(newest) if newest else None
        out = []
        for part, clock in self._clocks.items():
            for kind, queue in enumerate(self._queues[part]):
                out += [(it, v) for (_, it), v in settle_queue(clock, kind, queue, _first, reach, lead=False)]
        return out


def _first(pair: tuple) -> int:
    return pair[0]


def aggregate(lines: Iterable[tuple[str, bytes]], rules: WorkerRules | None = None) -> DailySeries:
    """Daily per-SKU series of ``(topic kind, value bytes)`` events, each topic in its send order.

    Kinds other than clicks/carts/orders (the catalog) are ignored. See the
    module docstring for what counts.
    """
    dropped: Counter = Counter()
    clocks = WorkerClocks(rules) if rules is not None else None
    recent: dict[str, list] = {}  # sku -> ring of recent event-id hashes (rules) or set of ids
    sku_col: list[str] = []
    day_col: list[int] = []
    code_col: list[int] = []  # 0 click, 1 cart add, 2 cart remove, 3 order
    qty_col: list[int] = []
    rev_col: list[float] = []
    def count(kind: int, ev: Any, verdict: int) -> None:
        if clocks is not None:
            ring = recent.setdefault(ev.sku, [])
            h = event_id_hash(ev.event_id)
            if h in ring:
                dropped["duplicate"] += 1
                return
            if verdict in (LATE, FUTURE):
                dropped["late" if verdict == LATE else "future"] += 1
                return
            ring.append(h)
            if len(ring) > rules.dedup_ids:
                del ring[0]
        else:
            seen = recent.setdefault(ev.sku, set())
            if ev.event_id in seen:
                dropped["duplicate"] += 1
                return
            seen.add(ev.event_id)
        sku_col.append(ev.sku)
        day_col.append(ev.ts // DAY_MS)
        code_col.append(3 if kind == 2 else 2 if ev.remove else kind)
        qty_col.append(ev.qty)
        rev_col.append(ev.revenue)

    for kind_name, raw in lines:
        if kind_name not in KINDS:
            continue
        kind = KINDS.index(kind_name)
        key = _key_of(raw)
        ev = decode(kind, key, raw)
        if type(ev) is Invalid:
            dropped[ev.code] += 1
            continue
        if clocks is None:
            count(kind, ev, ON_TIME)
            continue
        for (k, e), verdict in clocks.offer(kind, key, ev.ts, (kind, ev)):
            count(k, e, verdict)
    if clocks is not None:
        for (k, e), verdict in clocks.finish():
            count(k, e, verdict)
    return _group(sku_col, day_col, code_col, qty_col, rev_col, dict(dropped))


def aggregate_files(paths: str | Path | Iterable[str | Path], rules: WorkerRules | None = None) -> DailySeries:
    """:func:`aggregate` of event files: a folder of them, one file, or several (see :mod:`stream_app.data.eventfiles`)."""
    if isinstance(paths, (str, Path)):
        p = Path(paths)
        paths = list(event_files(p).values()) if p.is_dir() else [p]

    def lines():
        for path in paths:
            yield from read_lines(path)

    return aggregate(lines(), rules)


def _key_of(raw: bytes) -> bytes | None:
    # The key a producer gives the event: its sku (as kafka_io does), so the
    # decoder's key check passes exactly when it would for the worker.
    try:
        sku = orjson.loads(raw).get("sku")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return sku.encode() if isinstance(sku, str) and sku else None


def _group(skus: list, days: list, codes: list, qtys: list, revenue: list, dropped: dict) -> DailySeries:
    """Sum the events' contributions per (SKU, day), in input order (so float sums match the worker's)."""
    if not skus:
        empty = np.zeros(0, dtype=np.int64)
        return DailySeries((), empty, empty, np.zeros((0, len(COUNT_ROWS)), dtype=np.int64), np.zeros(0), dropped)
    names, sku_idx = np.unique(np.array(skus, dtype=object), return_inverse=True)
    day = np.array(days, dtype=np.int64)
    span = int(day.max() - day.min()) + 1
    keys, row = np.unique(sku_idx * span + (day - day.min()), return_inverse=True)
    codes = np.array(codes)
    counts = np.zeros((len(keys), len(COUNT_ROWS)), dtype=np.int64)
    np.add.at(counts, (row, codes), np.array(qtys, dtype=np.int64))
    np.add.at(counts[:, ORDER_LINES_ROW], row[codes == 3], 1)  # each order event is one line
    rev = np.zeros(len(keys))
    np.add.at(rev, row, np.array(revenue, dtype=np.float64))
    return DailySeries(tuple(str(s) for s in names), keys // span, keys % span + day.min(), counts, rev, dropped)
