"""Rolling per-SKU windows of daily buckets, advanced by event time.

One SKU's whole state is a single fixed-size byte string: a header, a ring
of ``history_days + lead_days`` daily buckets per channel, and a ring of
recent event-id hashes. Features read the last ``history_days`` days up to
the day being forecast; the ``lead_days`` more hold the days after it that
the worker may already have applied when the day closes (at most
``lead_days`` ahead of the newest closed day, see :mod:`stream_app.core.clock`),
so a forecast's history is the same whether the day closed in real time or
in a fast replay. It is stored, LZ4-compressed, as the value of a plain changelog
table. A compact value instead of Faust's windowed tables avoids their leaks
and lost windows across rebalances (faust-streaming #385, #193). Raw it is
~1.9 KB; most buckets of most SKUs are zero, so compressed it rests in
~170-400 bytes, in memory and in the changelog, and is decompressed (~1 µs)
only while a batch touches it.

Idempotence under at-least-once delivery: the header keeps, per source
topic, the highest offset already decided for this SKU, so an event that
Kafka re-delivers after a crash is recognised and skipped; the ring of
event-id hashes catches a producer that sent the same event twice. It also
keeps the newest event time applied per source topic: a partition's clock
is rebuilt from those after a restart, so it is never ahead of the state it
describes.

Layout (little-endian, native sizes):

* header: ``int64[HEADER_FIELDS]`` (see the ``H_*`` indices)
* counts: ``uint32[5, ring_days]``: clicks, cart adds, cart removes, units,
  order lines (one per order event, whatever its qty: how many orders a
  SKU was on, a strong signal for intermittent SKUs beside their units)
* revenue: ``float64[ring_days]`` (currency units)
* event ids: ``uint64[dedup_ids]`` (0 = empty slot)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import lz4.block
import numpy as np

from models.layout import CART_ADDS, CART_REMOVES, CHANNELS, CLICKS, ORDER_LINES, REVENUE, UNITS
from models.stage_tracker import TrackerState

DAY_MS = 86_400_000
MAGIC = 0x5443_0004  # "TC", layout 4 (3 had no order lines, 2 no lead days in its ring, 1 no stage tracker)

# Header fields.
H_MAGIC, H_PARTITION, H_HEAD_DAY, H_FORECAST_DAY, H_STAGE, H_PENDING_DAY = range(6)
H_SEEN_CLICKS, H_SEEN_CARTS, H_SEEN_ORDERS, H_ID_CURSOR, H_FIRST_SALE_DAY = range(6, 11)
H_MAX_TS_CLICKS, H_MAX_TS_CARTS, H_MAX_TS_ORDERS = range(11, 14)
# The stage tracker's state (models.stage_tracker): H_STAGE is its confirmed stage.
H_TRACK_SINCE, H_TRACK_CANDIDATE, H_TRACK_RUN, H_TRACK_SUPPORT, H_TRACK_SMOOTHED = range(14, 19)
HEADER_FIELDS = 19
PROB_SCALE = 65_535  # smoothed stage probabilities: four uint16 in one header field
SUPPORT_SCALE = 1_000_000
NO_DAY = -(1 << 62)

# Channels of :meth:`SkuWindow.series` and :meth:`StateBatch.histories`: models.layout.CHANNELS, in order.
# Rows of the counts ring: every channel but revenue (float64, a ring of its own).
# Order lines come after revenue in a history (channels 0-4 kept their index
# when they were added) but are the counts ring's row 4.
COUNT_ROWS = (CLICKS, CART_ADDS, CART_REMOVES, UNITS, ORDER_LINES)
ORDER_LINES_ROW = COUNT_ROWS.index(ORDER_LINES)
N_COUNTS = len(COUNT_ROWS)

# Event kinds, in the order of the source topics.
KIND_CLICK, KIND_CART, KIND_ORDER = range(3)

# Outcomes of :meth:`SkuWindow.apply`.
APPLIED, REDELIVERED, DUPLICATE = range(3)


def day_of(ts_ms: int) -> int:
    """Day index (days since 1970-01-01 UTC) of an epoch-millisecond timestamp."""
    return ts_ms // DAY_MS


def event_id_hash(event_id: str) -> int:
    """A stable, non-zero 64-bit hash of an event id (Python's ``hash`` is salted per process)."""
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") | 1


@dataclass(frozen=True)
class WindowSpec:
    """Sizes of a SKU window; every state in one table shares them."""

    history_days: int = 56
    dedup_ids: int = 16
    lead_days: int = 2
    # Byte offsets of the parts of a state, derived once (hot path).
    ring_days: int = field(init=False)
    counts_offset: int = field(init=False)
    revenue_offset: int = field(init=False)
    ids_offset: int = field(init=False)
    nbytes: int = field(init=False)

    def __post_init__(self) -> None:
        ring = self.history_days + self.lead_days
        counts = HEADER_FIELDS * 8
        revenue = counts + 4 * N_COUNTS * ring
        ids = revenue + 8 * ring
        for name, value in (("ring_days", ring), ("counts_offset", counts), ("revenue_offset", revenue),
                            ("ids_offset", ids), ("nbytes", ids + 8 * self.dedup_ids)):
            object.__setattr__(self, name, value)

    def new(self, partition: int) -> "SkuWindow":
        """An empty window for a SKU whose events arrive on ``partition``."""
        buf = bytearray(self.nbytes)
        w = SkuWindow(buf, self)
        h = w.header
        h[H_MAGIC] = MAGIC
        h[H_PARTITION] = partition
        for i in (H_HEAD_DAY, H_FORECAST_DAY, H_FIRST_SALE_DAY, H_PENDING_DAY):
            h[i] = NO_DAY
        h[H_STAGE] = h[H_TRACK_CANDIDATE] = -1
        for i in (H_SEEN_CLICKS, H_SEEN_CARTS, H_SEEN_ORDERS, H_MAX_TS_CLICKS, H_MAX_TS_CARTS, H_MAX_TS_ORDERS):
            h[i] = -1
        return w

    def load(self, blob: bytes) -> "SkuWindow":
        """A mutable window from its stored (compressed) bytes; ``ValueError`` on a foreign layout."""
        return SkuWindow(self.decompress(blob), self)

    def decompress(self, blob: bytes) -> bytearray:
        """The raw state bytes of a stored blob, checked against this spec."""
        try:
            raw = lz4.block.decompress(blob, uncompressed_size=self.nbytes, return_bytearray=True)
        except lz4.block.LZ4BlockError:
            raw = None
        if raw is None or len(raw) != self.nbytes or int.from_bytes(raw[:8], "little") != MAGIC:
            raise ValueError(
                f"stored SKU state does not fit a window of {self.nbytes} bytes: it was written with "
                "other history_days/dedup_ids_per_sku settings or another layout; use the same "
                "settings or a new app_id"
            )
        return raw


class SkuWindow:
    """A view over one SKU's state bytes with the operations the worker needs."""

    __slots__ = ("buf", "spec", "header", "counts", "revenue", "ids")

    def __init__(self, buf: bytearray, spec: WindowSpec) -> None:
        self.buf = buf
        self.spec = spec
        mv = memoryview(buf)
        self.header = mv[: spec.counts_offset].cast("q")
        self.counts = mv[spec.counts_offset : spec.revenue_offset].cast("I")
        self.revenue = mv[spec.revenue_offset : spec.ids_offset].cast("d")
        self.ids = mv[spec.ids_offset :].cast("Q")

    def to_bytes(self) -> bytes:
        """The state as stored in the table and its changelog (LZ4 block, no size prefix)."""
        return lz4.block.compress(self.buf, store_size=False)

    # --- ingest -------------------------------------------------------------
    def seen(self, kind: int, offset: int) -> bool:
        """Record that the event at ``offset`` of source ``kind`` was decided.

        Returns False when it had been decided before (a re-delivery), so the
        caller must not apply it or dead-letter it again.
        """
        i = H_SEEN_CLICKS + kind
        if offset <= self.header[i]:
            return False
        self.header[i] = offset
        return True

    def recent(self, id_hash: int) -> bool:
        """True when an event with this id hash was applied recently to this SKU."""
        return id_hash in self.ids

    def apply(
        self,
        kind: int,
        offset: int,
        ts: int,
        qty: int,
        revenue: float,
        remove: bool,
        id_hash: int,
    ) -> int:
        """Add one valid, on-time event to its daily bucket.

        ``ts`` is the event time (epoch ms), ``qty`` units (1 for a click),
        ``revenue`` currency units (orders only). Returns :data:`APPLIED`,
        :data:`REDELIVERED` (offset already decided) or :data:`DUPLICATE`
        (same event id seen recently for this SKU).
        """
        if not self.seen(kind, offset):
            return REDELIVERED
        ids = self.ids
        if id_hash in ids:
            return DUPLICATE
        h = self.header
        cursor = h[H_ID_CURSOR]
        ids[cursor] = id_hash
        h[H_ID_CURSOR] = (cursor + 1) % len(ids)

        if ts > h[H_MAX_TS_CLICKS + kind]:
            h[H_MAX_TS_CLICKS + kind] = ts
        n = self.spec.ring_days
        day = ts // DAY_MS
        head = h[H_HEAD_DAY]
        if day > head:
            self._advance(head, day)
            h[H_HEAD_DAY] = head = day
        elif day <= head - n:
            # Older than the ring: the clock closes a day long before the
            # ring forgets it, so only a misconfiguration gets here.
            return APPLIED
        slot = day % n
        if kind == KIND_CLICK:
            self.counts[CLICKS * n + slot] += 1
        elif kind == KIND_CART:
            self.counts[(CART_REMOVES if remove else CART_ADDS) * n + slot] += qty
        else:
            self.counts[UNITS * n + slot] += qty
            self.counts[ORDER_LINES_ROW * n + slot] += 1
            self.revenue[slot] += revenue
            if h[H_FIRST_SALE_DAY] == NO_DAY or day < h[H_FIRST_SALE_DAY]:
                h[H_FIRST_SALE_DAY] = day
        # The earliest day with events not yet covered by a forecast.
        due = day if day > h[H_FORECAST_DAY] else h[H_FORECAST_DAY] + 1
        if h[H_PENDING_DAY] == NO_DAY or due < h[H_PENDING_DAY]:
            h[H_PENDING_DAY] = due
        return APPLIED

    def _advance(self, head: int, day: int) -> None:
        """Zero the buckets of the days after ``head`` up to ``day`` (they are reused ring slots)."""
        n = self.spec.ring_days
        if head == NO_DAY or day - head >= n:
            spec = self.spec
            self.buf[spec.counts_offset : spec.ids_offset] = bytes(spec.ids_offset - spec.counts_offset)
            return
        counts, revenue = self.counts, self.revenue
        for d in range(head + 1, day + 1):
            slot = d % n
            for ch in range(N_COUNTS):
                counts[ch * n + slot] = 0
            revenue[slot] = 0.0

    # --- reading --------------------------------------------------------------
    def series(self, as_of_day: int) -> np.ndarray:
        """Daily history ending at ``as_of_day`` (inclusive), oldest first.

        Shape ``(6, history_days)``: clicks, cart adds, cart removes, units sold,
        revenue (currency units), order lines, per day. Days with no events, or outside the window, are 0.
        """
        return histories([self.buf], self.spec, as_of_day)[0][0]

    @property
    def partition(self) -> int:
        return self.header[H_PARTITION]

    @property
    def pending_day(self) -> int | None:
        """The earliest day with events not yet covered by a forecast, or None."""
        d = self.header[H_PENDING_DAY]
        return None if d == NO_DAY else d

    @property
    def stage(self) -> int:
        """Last published stage index, -1 before the first forecast."""
        return self.header[H_STAGE]

    def max_ts(self, kind: int) -> int:
        """Newest event time applied from source ``kind`` (epoch ms), -1 if none."""
        return self.header[H_MAX_TS_CLICKS + kind]

    @property
    def forecast_day(self) -> int:
        """Day of the last forecast (a very negative number before the first)."""
        return self.header[H_FORECAST_DAY]

    @property
    def first_sale_day(self) -> int | None:
        d = self.header[H_FIRST_SALE_DAY]
        return None if d == NO_DAY else d

    def mark_forecast(self, as_of_day: int) -> None:
        """Record that a forecast was published at ``as_of_day``."""
        h = self.header
        h[H_FORECAST_DAY] = as_of_day
        # Events of later days (arrived before this day closed) still need a forecast.
        h[H_PENDING_DAY] = self._next_active_day(as_of_day)

    def _next_active_day(self, after: int) -> int:
        n = self.spec.ring_days
        head = self.header[H_HEAD_DAY]
        counts, revenue = self.counts, self.revenue
        for d in range(max(after + 1, head - n + 1), head + 1):
            slot = d % n
            if revenue[slot] or any(counts[ch * n + slot] for ch in range(N_COUNTS)):
                return d
        return NO_DAY

    def totals(self) -> dict[str, float]:
        """Sums over the buckets currently in the ring (for checks and the CLI)."""
        n = self.spec.ring_days
        counts = np.frombuffer(self.counts, dtype=np.uint32).reshape(N_COUNTS, n).sum(axis=1)
        out = {CHANNELS[ch]: int(total) for ch, total in zip(COUNT_ROWS, counts)}
        out["revenue"] = float(np.frombuffer(self.revenue, dtype=np.float64).sum())
        return {name: out[name] for name in CHANNELS}


def histories(raws: list, spec: WindowSpec, as_of_day: int) -> tuple[np.ndarray, np.ndarray]:
    """Daily histories of many SKUs from their raw (uncompressed) states; see :meth:`StateBatch.histories`."""
    return StateBatch(bytearray(b"".join(raws)), spec).histories(as_of_day)


class StateBatch:
    """Many SKU states as one matrix, for vectorised reads and forecast bookkeeping.

    The forecast tick reads histories and updates three header fields of
    thousands of SKUs at once; doing it on one ``(n, nbytes)`` array is
    several times faster than a :class:`SkuWindow` per SKU.
    """

    def __init__(self, raw: bytearray, spec: WindowSpec) -> None:
        self.spec = spec
        self._raw = raw
        n = len(raw) // spec.nbytes
        m = np.frombuffer(raw, dtype=np.uint8).reshape(n, spec.nbytes)
        self.matrix = m
        self.header = m[:, : spec.counts_offset].view(np.int64)
        self.counts = m[:, spec.counts_offset : spec.revenue_offset].view(np.uint32).reshape(n, N_COUNTS, spec.ring_days)
        self.revenue = m[:, spec.revenue_offset : spec.ids_offset].view(np.float64)

    @classmethod
    def from_blobs(cls, blobs: list[bytes], spec: WindowSpec) -> "StateBatch":
        """Decompress stored states into one batch."""
        return cls(bytearray(b"".join([spec.decompress(b) for b in blobs])), spec)

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def histories(self, as_of_day: int) -> tuple[np.ndarray, np.ndarray]:
        """Daily histories ending at ``as_of_day`` and first-sale days.

        Returns ``(history, first_sale_day)``: ``history`` has shape
        ``(n, 6, history_days)`` float32 (as :meth:`SkuWindow.series`), and
        ``first_sale_day`` shape ``(n,)``, -1 for SKUs that never sold. The
        ring slot of a day is the same for every SKU; only the valid range
        differs, so this is one gather and one mask.
        """
        n, h, ring = len(self), self.spec.history_days, self.spec.ring_days
        days = np.arange(as_of_day - h + 1, as_of_day + 1)
        slots = days % ring
        head = self.header[:, H_HEAD_DAY : H_HEAD_DAY + 1]
        valid = (days[None, :] <= head) & (days[None, :] > head - ring)
        out = np.empty((n, len(CHANNELS), h), dtype=np.float32)
        out[:, :ORDER_LINES_ROW] = self.counts[:, :ORDER_LINES_ROW, slots]
        out[:, REVENUE] = self.revenue[:, slots]
        out[:, ORDER_LINES] = self.counts[:, ORDER_LINES_ROW, slots]
        out *= valid[:, None, :]
        first = self.header[:, H_FIRST_SALE_DAY]
        return out, np.where(first == NO_DAY, -1, first)

    def last_active(self, as_of_day: int) -> np.ndarray:
        """Per SKU, the newest day up to ``as_of_day`` with any event in the ring (``NO_DAY``: none)."""
        ring = self.spec.ring_days
        days = np.arange(as_of_day - ring + 1, as_of_day + 1)
        slots = days % ring
        head = self.header[:, H_HEAD_DAY : H_HEAD_DAY + 1]
        busy = (self.counts[:, :, slots] != 0).any(axis=1) | (self.revenue[:, slots] != 0)
        busy &= (days[None, :] <= head) & (days[None, :] > head - ring)
        # the last True of each row: argmax over the reversed days
        idx = ring - 1 - busy[:, ::-1].argmax(axis=1)
        return np.where(busy.any(axis=1), days[idx], NO_DAY)

    @property
    def stages(self) -> np.ndarray:
        """Confirmed stage index per SKU (-1 before the stage tracker confirmed one)."""
        return self.header[:, H_STAGE]

    def tracker(self) -> TrackerState:
        """The SKUs' stage-tracker state (see :mod:`models.stage_tracker`)."""
        hdr = self.header
        smoothed = np.ascontiguousarray(hdr[:, H_TRACK_SMOOTHED]).view(np.uint16).reshape(-1, 4)
        return TrackerState(
            stage=hdr[:, H_STAGE].copy(), since=hdr[:, H_TRACK_SINCE].copy(),
            candidate=hdr[:, H_TRACK_CANDIDATE].copy(), run=hdr[:, H_TRACK_RUN].copy(),
            support=(hdr[:, H_TRACK_SUPPORT] / SUPPORT_SCALE).astype(np.float32),
            smoothed=(smoothed / PROB_SCALE).astype(np.float32),
        )

    def set_tracker(self, state: TrackerState) -> None:
        """Store the SKUs' stage-tracker state (probabilities to 1/65535, support to 1e-6)."""
        hdr = self.header
        hdr[:, H_STAGE] = state.stage
        hdr[:, H_TRACK_SINCE] = state.since
        hdr[:, H_TRACK_CANDIDATE] = state.candidate
        hdr[:, H_TRACK_RUN] = state.run
        hdr[:, H_TRACK_SUPPORT] = np.round(state.support * SUPPORT_SCALE)
        packed = np.round(np.clip(state.smoothed, 0.0, 1.0) * PROB_SCALE).astype(np.uint16)
        hdr[:, H_TRACK_SMOOTHED] = np.ascontiguousarray(packed).view(np.int64)[:, 0]

    def mark_forecast(self, as_of_day: int) -> np.ndarray:
        """Record a forecast at ``as_of_day`` for every SKU; returns the new pending days (``NO_DAY``: none).

        Events of later days (arrived before this day closed) still need a forecast.
        """
        ring = self.spec.ring_days
        hdr = self.header
        hdr[:, H_FORECAST_DAY] = as_of_day
        days = np.arange(as_of_day + 1, as_of_day + ring)
        head = hdr[:, H_HEAD_DAY : H_HEAD_DAY + 1]
        slots = days % ring
        active = (self.counts[:, :, slots] != 0).any(axis=1) | (self.revenue[:, slots] != 0)
        active &= (days[None, :] <= head) & (days[None, :] > head - ring)
        nxt = np.where(active.any(axis=1), days[active.argmax(axis=1)], NO_DAY)
        hdr[:, H_PENDING_DAY] = nxt
        return nxt

    def blobs(self) -> list[bytes]:
        """The states compressed for storage, in order."""
        compress = lz4.block.compress
        return [compress(row, store_size=False) for row in self.matrix]
