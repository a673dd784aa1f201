"""Adapters that turn datasets into our topics' events, in event-time order.

An adapter is one small class: a ``name``, the ``topics`` the dataset can
fill, and :meth:`Adapter.rows`, which yields ``(topic kind, event)`` in
event-time order and counts what it skips in ``skipped`` (reason -> rows).
Topics a dataset lacks stay silent: nothing is invented (the UCI data has no
views or carts, so its replay sends no clicks and no carts). A clickstream
dataset (view/cart/purchase, e.g. RetailRocket or REES46) is one more class.

Pure: file in, iterator out. Sending to Kafka is the CLI's job.
"""

from __future__ import annotations

import csv
import gzip
import io
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import numpy as np

from stream_app.data.eventfiles import event_files, merged


class Adapter(ABC):
    """One dataset's file(s) at ``path`` as our events; ``since_ms``/``until_ms`` keep ``since <= ts < until``."""

    name: ClassVar[str]
    topics: ClassVar[tuple[str, ...]]

    def __init__(self, path: str | Path, *, since_ms: int | None = None, until_ms: int | None = None) -> None:
        self.path = Path(path)
        self.since_ms, self.until_ms = since_ms, until_ms
        self.skipped: Counter = Counter()

    def in_window(self, ts: int) -> bool:
        """Whether event time ``ts`` (epoch ms) is inside the chosen slice."""
        return (self.since_ms is None or ts >= self.since_ms) and (self.until_ms is None or ts < self.until_ms)

    @abstractmethod
    def rows(self) -> Iterator[tuple[str, dict]]:
        """``(topic kind, event)`` in event-time order; each catalog record before its SKU's first event."""


class EventFiles(Adapter):
    """Our own event files (a folder written by ``trendcast simulate`` or ``replay --out``), merged by ``ts``."""

    name = "events"
    topics = ("clicks", "carts", "orders", "catalog")

    def rows(self) -> Iterator[tuple[str, dict]]:
        paths = list(event_files(self.path).values()) if self.path.is_dir() else [self.path]
        for kind, value in merged(paths):
            ts = value.get("ts") if isinstance(value, dict) else None
            if isinstance(ts, int) and not self.in_window(ts):
                self.skipped["outside_window"] += 1
                continue
            yield kind, value


# Stock codes that are services or bookkeeping, not products (SOURCE.md of the dataset).
NON_PRODUCT_CODES = frozenset({"POST", "DOT", "C2", "M", "D", "S", "B", "AMAZONFEE", "BANK CHARGES", "CRUK"})
UCI_COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice")
SKIP_REASONS = ("malformed", "cancellation", "gift_voucher", "non_product", "stock_adjustment", "zero_price",
                "outside_window")


class UciOnlineRetail(Adapter):
    """UCI "Online Retail" (id 352, CC BY 4.0): invoice lines -> ``orders``, descriptions -> ``catalog``.

    Rules, in this order (a row is skipped for the first that applies):

    * ``malformed``: a quantity, price or date that does not parse;
    * ``cancellation``: invoice number starting with ``C`` (negative
      quantities that cancel or return earlier lines); demand is counted
      gross, when ordered, and cancellations are not subtracted;
    * ``gift_voucher``: stock codes ``gift_0001_*`` (a payment means, not a product);
    * ``non_product``: :data:`NON_PRODUCT_CODES` (postage, carriage, manual
      entries, discounts, samples, bad-debt adjustments, fees, charges);
    * ``stock_adjustment``: quantity <= 0 outside a cancellation (damaged,
      lost, "found" stock: 79 % of them have no description);
    * ``zero_price``: unit price <= 0 (free replacements, found stock);
    * ``outside_window``: before ``since_ms`` or from ``until_ms`` on.

    A kept line is an order: ``sku`` = StockCode upper-cased (``84968e`` and
    ``84968E`` are the same product), ``order_id`` = InvoiceNo, ``event_id`` =
    ``uci-<invoice>-<sku>-<n>`` (the n-th line of that SKU on that invoice, so
    ids are stable for any subset of whole SKUs or invoices), ``ts`` =
    InvoiceDate read as UK local time (Europe/London) in epoch ms UTC,
    ``unit_price`` in GBP. A SKU's first kept line with a description also
    sends its ``catalog`` record: ``title`` = that description, ``description``
    empty, ``category`` ``"unknown"``, ``price`` and ``launched_at`` null
    (the data has none of these; prices vary with the quantity ordered).
    """

    name = "uci"
    topics = ("orders", "catalog")
    currency = "GBP"
    local_time = ZoneInfo("Europe/London")

    def rows(self) -> Iterator[tuple[str, dict]]:
        kept = self._read()
        cataloged: set[str] = set()
        for i in np.argsort(np.array([r[3] for r in kept], dtype=np.int64), kind="stable"):
            invoice, sku, desc, ts, qty, price, event_id = kept[i]
            if sku not in cataloged and desc:
                cataloged.add(sku)
                yield "catalog", {"schema_version": 1, "sku": sku, "title": desc, "description": "",
                                  "category": "unknown", "price": None, "launched_at": None}
            yield "orders", {"schema_version": 1, "event_id": event_id, "order_id": invoice, "sku": sku,
                             "ts": ts, "qty": qty, "unit_price": price, "currency": self.currency}

    def _read(self) -> list[tuple]:
        """Every kept line as ``(invoice, sku, description, ts, qty, price, event_id)``, in file order."""
        kept = []
        ts_of: dict[str, int | None] = {}
        lines_of: Counter = Counter()
        with _open_text(self.path) as f:
            reader = csv.reader(f)
            header = next(reader, [])
            missing = [c for c in UCI_COLUMNS if c not in header]
            if missing:
                raise ValueError(f"{self.path} is not the UCI Online Retail CSV: no column(s) {', '.join(missing)}")
            at = [header.index(c) for c in UCI_COLUMNS]
            for row in reader:
                if len(row) < len(header):
                    self.skipped["malformed"] += 1
                    continue
                invoice, code, desc, qty_s, date_s, price_s = (row[j].strip() for j in at)
                sku = code.upper()
                lines_of[invoice, sku] += 1
                if date_s not in ts_of:
                    ts_of[date_s] = self._epoch_ms(date_s)
                ts = ts_of[date_s]
                try:
                    qty, price = int(qty_s), float(price_s)
                except ValueError:
                    qty = price = None
                reason = self._skip_reason(invoice, sku, qty, price, ts)
                if reason:
                    self.skipped[reason] += 1
                    continue
                kept.append((invoice, sku, desc, ts, qty, price, f"uci-{invoice}-{sku}-{lines_of[invoice, sku]}"))
        return kept

    def _skip_reason(self, invoice: str, sku: str, qty: int | None, price: float | None, ts: int | None) -> str:
        if qty is None or price is None or ts is None or not invoice or not sku or price != price:
            return "malformed"
        if invoice.startswith("C"):
            return "cancellation"
        if sku.startswith("GIFT_"):
            return "gift_voucher"
        if sku in NON_PRODUCT_CODES:
            return "non_product"
        if qty <= 0:
            return "stock_adjustment"
        if price <= 0:
            return "zero_price"
        if not self.in_window(ts):
            return "outside_window"
        return ""

    def _epoch_ms(self, text: str) -> int | None:
        """UK local ``YYYY-MM-DD HH:MM[:SS]`` (or the UCI original ``M/D/YYYY H:MM``) as epoch ms UTC."""
        try:
            if "/" in text:
                local = datetime.strptime(text, "%m/%d/%Y %H:%M")
            else:
                local = datetime.fromisoformat(text)
        except ValueError:
            return None
        return int(local.replace(tzinfo=self.local_time).timestamp() * 1000)


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


ADAPTERS: dict[str, type[Adapter]] = {a.name: a for a in (UciOnlineRetail, EventFiles)}
