"""The state store in memory: every table's changes go out at the flush, in order, tombstones included."""

from __future__ import annotations

import asyncio

from stream_app.core.state import StateStore, Table


class Sender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, int]] = []
        self.flushes = 0

    def produce(self, topic, key, value, partition=-1):
        self.sent.append((topic, key, value, partition))

    async def flush(self):
        self.flushes += 1


def test_a_flush_sends_each_changed_key_once_with_its_latest_value_and_tombstones():
    windows_dirty = {0: {b"w1"}}
    windows = Table("windows", "w-changelog", {b"w1": b"state"}, dirty=lambda skip: windows_dirty)
    stock = Table("stock", "s-changelog", {})
    learning = Table("learning", "l-changelog", {b"cal:1": b"old"})
    store = StateStore([windows, stock, learning])
    stock.put(b"A", b"count 5", 0)
    stock.put(b"A", b"count 7", 0)  # changed twice: its latest value goes out once
    learning.delete(b"cal:1", 1)
    sender = Sender()
    sent = asyncio.run(store.flush(sender))
    assert sent == {"windows": 1, "stock": 1, "learning": 1} and sender.flushes == 1
    assert sorted(sender.sent) == [("l-changelog", b"cal:1", None, 1), ("s-changelog", b"A", b"count 7", 0),
                                   ("w-changelog", b"w1", b"state", 0)]
    assert b"cal:1" not in learning and stock[b"A"] == b"count 7"
    windows_dirty.clear()
    sender.sent.clear()
    assert asyncio.run(store.flush(sender)) == {"windows": 0, "stock": 0, "learning": 0} and not sender.sent


def test_forgetting_a_partition_drops_its_records_and_pending_changes_without_sending():
    table = Table("catalog", "c", {})
    table.put(b"A", b"a", 0)
    table.put(b"B", b"b", 1)
    table.forget([b"A"], {0})
    sender = Sender()
    asyncio.run(StateStore([table]).flush(sender))
    assert list(table) == [b"B"] and sender.sent == [("c", b"B", b"b", 1)]


def test_a_partition_skipped_keeps_its_changes_for_the_next_send_and_its_batches_held():
    """A partition mid-tick: its changes (the ingest's too) and its held offsets wait; the others go out."""
    from faust.types import TP

    from stream_app.core.ingest import Ingestor
    from stream_app.core.windows import WindowSpec
    from stream_app.worker.faust_adapter import CommitLedger

    ingestor = Ingestor({b"w0": b"s0", b"w1": b"s1"}, WindowSpec(), grace_ms=0, max_ahead_ms=0, future_confirm=1)
    ingestor.dirty = {0: {b"w0"}, 1: {b"w1"}}
    windows = Table("windows", "w", ingestor.store, dirty=ingestor.take_dirty)
    learning = Table("learning", "l", {})
    learning.put(b"cal:0", b"c0", 0)
    learning.put(b"cal:1", b"c1", 1)
    store, sender = StateStore([windows, learning]), Sender()
    ledger = CommitLedger()
    ledger.hold(TP("orders", 0), 10)
    ledger.hold(TP("orders", 1), 20)

    assert ledger.take(frozenset({1})) == [(TP("orders", 0), 10)]
    assert store.send(sender, frozenset({1})) == {"windows": 1, "learning": 1}
    assert sorted(sender.sent) == [("l", b"cal:0", b"c0", 0), ("w", b"w0", b"s0", 0)]
    sender.sent.clear()
    ingestor.dirty.setdefault(1, set()).add(b"w1")  # changed again meanwhile: still one record
    assert ledger.take() == [(TP("orders", 1), 20)]
    assert store.send(sender) == {"windows": 1, "learning": 1}
    assert sorted(sender.sent) == [("l", b"cal:1", b"c1", 1), ("w", b"w1", b"s1", 1)]


def test_a_transient_key_leaves_the_local_dict_once_sent():
    """Pending-forecast chunks: held decoded by the worker, so the table keeps none once it sent them."""
    table = Table("learning", "l", {}, transient=lambda k: k.startswith(b"pend:"))
    table.put(b"cal:0", b"calibrator", 0)
    table.put(b"pend:0:5:0", b"chunk", 0)
    sender = Sender()
    StateStore([table]).send(sender)
    assert sorted(sender.sent) == [("l", b"cal:0", b"calibrator", 0), ("l", b"pend:0:5:0", b"chunk", 0)]
    assert list(table) == [b"cal:0"]
    table.delete(b"pend:0:5:0", 0)  # its tombstone still goes out when the day expires
    StateStore([table]).send(sender)
    assert sender.sent[-1] == ("l", b"pend:0:5:0", None, 0)
