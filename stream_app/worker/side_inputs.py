"""What the worker knows of a SKU besides its event windows: catalog record, text embedding, stock count.

Three changelog-backed tables of the state store (:mod:`stream_app.core.state`),
each written by its own low-volume input (one record per message, unlike
the batched event path): the latest catalog record, the text embedding of
that record (made in batches off the event loop), and the newest stock
count. Their changes reach the changelogs at the worker's flush, and a
catalog or inventory record's offset is held in the commit ledger until
then, as a batch of events is. The tick reads them through the plain-dict
views below.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from models.text import catalog_text
from stream_app.core import inventory
from stream_app.core.decode import Invalid, decode_catalog, decode_inventory
from stream_app.core.ingest import Rejected
from stream_app.core.launch_forecasts import launch_day
from stream_app.core.partitioning import partition_for
from stream_app.worker.metrics import Metrics
from faust.types import TP

from stream_app.worker.faust_adapter import CommitLedger
from stream_app.worker.publish import Publisher
from stream_app.worker.scoring import EncoderUnavailable
from stream_app.core.scorer import Scorer, embedding_is_current, embedding_record
from stream_app.settings import Settings
from stream_app.core.state import Table
from stream_app.core.ticks import UNKNOWN_GROUP


@dataclass
class SideInputs:
    """The catalog, embeddings and inventory tables with the handlers of their input topics."""

    settings: Settings
    metrics: Metrics
    publisher: Publisher
    scorer: Scorer
    ledger: CommitLedger
    catalog: Table
    embeddings: Table
    stock: Table
    categories: dict[bytes, str] = field(default_factory=dict)
    to_embed: dict[bytes, tuple[str, int]] = field(default_factory=dict)  # SKU -> (catalog text, partition)
    # SKU -> (its catalog record as read, partition, launch day or None): a record is parsed once, not per tick
    launch_index: dict[bytes, tuple[bytes, int, int | None]] = field(default_factory=dict)
    launch_lock: threading.Lock = field(default_factory=threading.Lock)  # ticks of two partitions scan at once

    def reject(self, msg: Any, why: Invalid) -> None:
        """Dead-letter one record with its reason, and count it."""
        self.metrics.events_invalid.labels(why.code).inc()
        rejected = Rejected(-1, msg.partition, msg.offset, msg.key, msg.value, why.code, why.message)
        self.publisher.dead_letters([rejected], self.settings.source_topics, topic=msg.topic)

    def accept(self, msg: Any, decode: Callable[[bytes | None, bytes | None], Any]) -> Any:
        """Count one record and decode it; an invalid one is dead-lettered and ``None`` comes back."""
        self.metrics.events_consumed.labels(msg.topic).inc()
        got = decode(msg.key, msg.value)
        if type(got) is Invalid:
            self.reject(msg, got)
            return None
        return got

    def decided(self, msg: Any) -> None:
        """The record's effects are in the tables (or its dead letter is queued): commit it after the next flush."""
        self.ledger.hold(TP(msg.topic, msg.partition), msg.offset + 1)

    async def handle_catalog(self, event: Any) -> None:
        """Keep a SKU's latest valid catalog record and queue its text for embedding; dead-letter an invalid one."""
        msg = event.message
        rec = self.accept(msg, decode_catalog)
        self.decided(msg)
        if rec is None:
            return
        self.catalog.put(msg.key, msg.value, msg.partition)
        self.categories.pop(msg.key, None)
        if self.settings.launch_forecasts:
            self.launch_index[msg.key] = (msg.value, msg.partition, launch_day(rec.get("launched_at")))
        if self.scorer.encoder is not None:
            self.to_embed[msg.key] = (catalog_text(rec["title"], rec["description"], rec["category"]), msg.partition)

    async def embed_catalog(self) -> int:
        """Embed the catalog texts that arrived since the last call, in batches, off the event loop.

        A SKU is embedded once per distinct text; until its embedding is
        stored its forecasts use the model's "unknown" text vector. Returns
        the number of texts embedded.
        """
        # Faust awaits each timer run before the next: batches never overlap.
        if not self.to_embed:
            return 0
        table = self.embeddings
        todo, self.to_embed = self.to_embed, {}
        todo = {k: v for k, v in todo.items() if not embedding_is_current(table.get(k), v[0])}
        keys = list(todo)
        encoder, loop = self.scorer.encoder, asyncio.get_running_loop()
        size = self.settings.embed_batch_size
        for start in range(0, len(keys), size):
            chunk = keys[start : start + size]
            texts = [todo[k][0] for k in chunk]
            # torch releases the GIL inside its kernels: ingest goes on meanwhile.
            try:
                vectors = await loop.run_in_executor(None, encoder.encode, texts)
            except EncoderUnavailable:
                return 0  # logged when the load failed; these SKUs keep the "unknown" text vector
            for key, text, vec in zip(chunk, texts, vectors):
                table.put(key, embedding_record(text, vec), todo[key][1])
        self.metrics.embeddings.inc(len(keys))
        return len(keys)

    async def handle_inventory(self, event: Any) -> None:
        """Keep a SKU's newest stock count (by ``ts``); dead-letter an invalid record."""
        msg = event.message
        got = self.accept(msg, decode_inventory)
        self.decided(msg)
        if got is None:
            return
        on_hand, ts = got
        old = self.stock.get(msg.key)
        if inventory.newer(old, ts):
            self.stock.put(msg.key, inventory.replace_count(old, on_hand, ts), msg.partition)

    def groups_of(self, keys: list[bytes]) -> np.ndarray:
        """Calibration group (catalog category) of each SKU; "unknown" without a catalog record."""
        cache, catalog = self.categories, self.catalog
        out = []
        for k in keys:
            c = cache.get(k)
            if c is None:
                raw = catalog.get(k)
                c = orjson.loads(raw).get("category") or UNKNOWN_GROUP if raw else UNKNOWN_GROUP
                if raw:
                    cache[k] = c
            out.append(c)
        return np.array(out, dtype=object)

    async def launch_days(self, partition: int) -> dict[bytes, int] | None:
        """The launch day of each of ``partition``'s catalog records that names one; None: none, or launch forecasts off.

        A scan of the whole catalog, on a thread (a million records take
        seconds the first time, parsing them), over a copy of the table
        taken on the loop, which keeps changing it.
        """
        if not self.settings.launch_forecasts or self.scorer.encoder is None:
            return None
        return await asyncio.to_thread(self._launch_days, list(self.catalog.data.items()), partition)

    def _launch_days(self, records: list[tuple[bytes, bytes]], partition: int) -> dict[bytes, int] | None:
        # A record taken in by handle_catalog came with its partition; a restored one did not, and the catalog
        # topic is keyed by SKU like the events, so its partition is the key's under Kafka's default partitioner.
        with self.launch_lock:
            index, n = self.launch_index, self.settings.partitions
            out = {}
            for key, raw in records:
                got = index.get(key)
                if got is None or got[0] is not raw:
                    got = index[key] = (raw, partition_for(key, n), launch_day(orjson.loads(raw).get("launched_at")))
                if got[1] == partition and got[2] is not None:
                    out[key] = got[2]
            if len(index) > len(records):  # records of partitions that moved away
                keep = {k for k, _ in records}
                for key in [k for k in list(index) if k not in keep]:
                    index.pop(key, None)
            return out or None

    @property
    def stock_store(self) -> dict[bytes, bytes] | None:
        """The stock counts the tick reads and marks, or None without an inventory topic."""
        return self.stock.data if self.settings.topic_inventory else None

    @property
    def embedding_store(self) -> dict[bytes, bytes] | None:
        """The embeddings the tick reads, or None when the model reads no text."""
        return self.embeddings.data if self.scorer.encoder is not None else None
