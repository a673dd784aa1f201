"""The worker driven in-process: batches in, the messages it would send out, flush, revoke and restore.

The worker is the real one (:func:`stream_app.worker.app.create_app`: Faust tables
in memory, the ingest, the tick, the commit ledger, the publisher); only
the librdkafka producer and, for the revoke, the consumer's commit are
stand-ins that record what would reach Kafka (no broker runs in these
tests; the same paths against the embedded broker are in
tests/integration). The baseline forecasts, so nothing loads a model.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import namedtuple

import orjson
from faust.types import TP

from schemas import validate
from stream_app.core import inventory
from stream_app.core.learning import is_pending_record
from stream_app.worker.app import INVENTORY_TABLE, LEARNING_TABLE, Worker, create_app
from stream_app.worker.faust_adapter import BatchMessage
from stream_app.worker.metrics import Metrics
from stream_app.settings import Settings

Rec = namedtuple("Rec", "offset key value timestamp timestamp_type")
DAY, HOUR = 86_400_000, 3_600_000
T0 = 20_000 * DAY
SKUS = [b"A", b"B", b"C", b"D"]


class RecordingProducer:
    """librdkafka's Producer as the publisher uses it, keeping what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, int]] = []

    def produce(self, topic, value, key, partition):
        self.sent.append((topic, key, value, partition))

    def poll(self, timeout):
        return 0

    def flush(self, timeout):
        return 0  # everything delivered

    def list_topics(self, timeout):
        return None

    def on(self, topic: str) -> list[tuple[bytes | None, bytes, int]]:
        return [(k, v, p) for t, k, v, p in self.sent if t == topic]


class CommitRecorder:
    """The consumer's commit of released offsets, recorded."""

    def __init__(self) -> None:
        self.committed: list[set] = []

    async def commit_released(self, tps):
        self.committed.append(set(tps))
        return True


@dataclasses.dataclass
class FakeApp:
    consumer: CommitRecorder


def make_worker(name: str, **settings_kw) -> tuple[Worker, RecordingProducer]:
    producer = RecordingProducer()
    settings = Settings(forecaster="baseline", partitions=2, app_id=f"inproc-{name}", **settings_kw)
    worker = create_app(settings, metrics=Metrics.create(), producer=producer)
    return dataclasses.replace(worker, app=FakeApp(CommitRecorder())), producer


def day_batches(worker: Worker, day: int, offsets: dict, partition: int = 0, skus=SKUS, bad: bool = False,
                qty=lambda day, i: 1 + (day + i) % 3, tag: str = ""):
    """One batch per source topic of ``partition``: each SKU clicked, carted and ordered (``qty(day, i)`` units) at noon.

    ``tag`` makes the event and order ids of another round of the same day.
    """
    ts = T0 + day * DAY + 12 * HOUR
    s = worker.settings
    out = []
    for topic in s.source_topics:
        recs = []
        for i, sku in enumerate(skus):
            ev = {"schema_version": 1, "event_id": f"{topic}-{day}-{sku.decode()}{tag}", "sku": sku.decode(),
                  "ts": ts + i}
            if topic == s.topic_carts:
                ev.update(qty=1, action="add")
            elif topic == s.topic_orders:
                ev.update(order_id=f"o{day}{sku.decode()}{tag}", qty=qty(day, i), unit_price=2.0)
            recs.append((sku, orjson.dumps(ev), ts + i))
        if bad and topic == s.topic_orders:
            recs.append((b"A", b'{"schema_version": 1, "sku": "A", "qty": "many"}', ts))
        tp = TP(topic, partition)
        start = offsets.get(tp, 0)
        offsets[tp] = start + len(recs)
        out.append(BatchMessage(tp, [Rec(start + j, k, v, t, 0) for j, (k, v, t) in enumerate(recs)], 1))
    return out


async def feed(worker: Worker, days, offsets: dict, **kw) -> None:
    for day in days:
        for batch in day_batches(worker, day, offsets, **kw):
            await worker.handle_batch(batch)
    await worker.settled()  # the last closed day's tick


def messages(producer: RecordingProducer, topic: str) -> list[dict]:
    return [orjson.loads(v) for _, v, _ in producer.on(topic)]


def test_batches_close_days_and_every_sku_gets_a_valid_forecast_for_each_closed_day():
    async def run():
        worker, producer = make_worker("forecast")
        await feed(worker, range(6), {})
        return worker, producer

    worker, producer = asyncio.run(run())
    forecasts = messages(producer, worker.settings.topic_forecasts)
    for m in forecasts:
        validate("forecasts", m)
    days = sorted({m["as_of"] // DAY - 1 - 20_000 for m in forecasts})
    assert days == list(range(len(days))) and len(days) >= 4  # every closed day, in order
    by_day = {d: sorted(m["sku"] for m in forecasts if m["as_of"] // DAY - 1 - 20_000 == d) for d in days}
    assert all(v == ["A", "B", "C", "D"] for v in by_day.values())
    # what the window saw is in the forecast: the orders of that day
    last = [m for m in forecasts if m["sku"] == "B" and m["as_of"] == (20_000 + days[-1] + 1) * DAY][0]
    assert last["observed"]["units_1d"] == 1 + (days[-1] + 1) % 3


def test_offsets_are_released_only_by_the_flush_that_writes_the_state_they_caused():
    async def run():
        worker, producer = make_worker("ledger")
        offsets: dict = {}
        await feed(worker, range(3), offsets)
        before = dict(worker.ledger.released)
        changelog = worker.changelog_topic
        assert not producer.on(changelog)  # nothing written yet
        written = await worker.flush()
        return worker, producer, offsets, before, written, changelog

    worker, producer, offsets, before, written, changelog = asyncio.run(run())
    assert before == {}  # held, not released, before the flush
    assert sorted(k for k, _, _ in producer.on(changelog)) == sorted(SKUS)
    learning = producer.on(worker.state[LEARNING_TABLE].topic)  # the calibration the ticks changed
    assert learning and written == len(SKUS) + len(learning)
    released = worker.ledger.released
    # every decided record is released; records of days too far ahead still wait (the clock's lead days)
    assert set(released) == set(offsets)
    assert all(0 < released[tp] <= offsets[tp] for tp in offsets)


def test_a_malformed_event_is_dead_lettered_with_its_reason_and_the_rest_applied():
    async def run():
        worker, producer = make_worker("dead")
        await feed(worker, range(4), {}, bad=True)
        await worker.flush()
        return worker, producer

    worker, producer = asyncio.run(run())
    dead = messages(producer, worker.settings.topic_dead_letters)
    assert len(dead) >= 3  # one per fed day that was decided
    assert all(d["source_topic"] == worker.settings.topic_orders and d["reason"] for d in dead)
    forecasts = messages(producer, worker.settings.topic_forecasts)
    assert {m["sku"] for m in forecasts} == {"A", "B", "C", "D"}


def test_a_revoke_commits_what_was_released_and_the_assignment_that_moves_the_partition_forgets_it():
    async def run():
        worker, producer = make_worker("revoke")
        await feed(worker, range(4), {}, partition=0)
        await feed(worker, range(4), {}, partition=1, skus=[b"P", b"Q"])
        await worker.on_revoked({0})
        kept = (sorted(worker.ingestor.store), {int(k.split(b":")[1]) for k in worker.learning_store})
        worker.on_assigned({1})
        return worker, kept

    worker, kept = asyncio.run(run())
    committed = worker.app.consumer.committed
    assert len(committed) == 1 and {tp.partition for tp in committed[0]} == {0}
    assert {tp.topic for tp in committed[0]} == set(worker.settings.source_topics)
    assert 0 not in worker.ready_partitions and 1 in worker.ready_partitions
    # Until the new assignment is known, partition 0 may come back: its state stays.
    assert kept == ([b"A", b"B", b"C", b"D", b"P", b"Q"], {0, 1})
    assert sorted(worker.ingestor.store) == [b"P", b"Q"]  # partition 1's SKUs stay
    parts = {int(k.split(b":")[1]) for k in worker.learning_store}
    assert parts == {1}  # the calibration state of partition 0 went with it


def test_a_partition_revoked_and_assigned_back_keeps_its_state_and_publishes_what_it_would_have():
    """Faust's rebalance revokes every partition, then assigns; one assigned back is not restored from its
    changelog again, so a revoke that dropped its windows and calibration lost them (a second worker
    joining, a third one starting: the state of the partitions the first one kept started over)."""

    async def run():
        steady, steady_out = make_worker("steady-back")
        back, back_out = make_worker("back")
        offs_steady, offs_back = {}, {}
        await feed(steady, range(6), offs_steady)
        await feed(back, range(6), offs_back)
        await back.on_revoked({0, 1})
        back.on_assigned({0, 1})
        steady_out.sent.clear()
        back_out.sent.clear()
        await feed(steady, range(6, 10), offs_steady)
        await feed(back, range(6, 10), offs_back)
        return steady, steady_out, back, back_out

    steady, steady_out, back, back_out = asyncio.run(run())
    topic = steady.settings.topic_forecasts
    want, got = messages(steady_out, topic), messages(back_out, topic)
    assert len(want) >= 3 * len(SKUS) and all(m["calibrated"] for m in want)
    key = lambda m: (m["as_of"], m["sku"])  # noqa: E731
    assert sorted(got, key=key) == sorted(want, key=key)
    assert back.parked == {1}  # partition 1 had no batch since: it stays parked until its first one


def _restore_into(worker: Worker, source: Worker, out: RecordingProducer) -> None:
    """What Faust's recovery does for ``worker``: ``source``'s changelogs of windows and learning into its tables."""
    for topic, store in ((source.changelog_topic, worker.ingestor.store),
                         (source.state[LEARNING_TABLE].topic, worker.learning_store)):
        for key, value, _ in out.on(topic):
            if value is None:
                store.pop(key, None)
            else:
                store[key] = value


async def _fed_pair(*names: str) -> list[tuple[Worker, RecordingProducer, dict]]:
    """Workers scoring one SKU per micro-batch (a tick yields between SKUs), each fed days 0-5; with their offsets."""
    out = []
    for name in names:
        worker, producer = make_worker(name, score_batch_size=1)
        offsets: dict = {}
        await feed(worker, range(6), offsets)
        out.append((worker, producer, offsets))
    return out


def test_a_revoke_does_not_wait_for_a_tick_and_a_partition_that_stays_publishes_what_it_would_have():
    """The whole group waits for a revoke, and a tick of 100k SKUs runs for seconds: a ticking partition is
    kept whole, out of every flush, until the assignment; one assigned back finishes its tick, reads again
    what came after its last commit (applied once) and publishes what a worker never revoked publishes."""

    async def run():
        (steady, steady_out, offs_steady), (back, back_out, offs_back) = await _fed_pair("steady-tick", "back-tick")
        steady_out.sent.clear()
        back_out.sent.clear()
        committed = dict(offs_back)
        for batch in day_batches(back, 6, offs_back):  # day 6 closes day 5: its tick starts
            await back.handle_batch(batch)
        tick = back.ticks.get(0)
        await back.on_revoked({0, 1})
        seen = {"the revoke returned while the tick ran": tick is not None and not tick.done()}
        await back.settled()
        await back.flush()
        seen["nothing of the kept partition reached the changelog"] = not back_out.on(back.changelog_topic)
        back.on_assigned({0, 1})
        for batch in day_batches(back, 6, dict(committed)):  # Faust seeks to the commit: day 6 again
            await back.handle_batch(batch)
        await feed(back, range(7, 10), offs_back)
        await feed(steady, range(6, 10), offs_steady)
        await back.flush()
        latest = {k: v for k, v, _ in back_out.on(back.changelog_topic)}
        seen["it flushes again once assigned back"] = all(latest.get(k) == v for k, v in back.ingestor.store.items())
        return seen, steady, steady_out, back, back_out

    seen, steady, steady_out, back, back_out = asyncio.run(run())
    assert all(seen.values()), seen
    topic = steady.settings.topic_forecasts
    want, got = messages(steady_out, topic), messages(back_out, topic)
    assert len(want) >= 4 * len(SKUS) and all(m["calibrated"] for m in want)
    key = lambda m: (m["as_of"], m["sku"])  # noqa: E731
    assert sorted(got, key=key) == sorted(want, key=key)
    assert back.metrics.redelivered._value.get() >= 3 * len(SKUS)  # day 6 came again and was applied once
    assert not back.kept_ticking


def test_the_assignment_delivers_what_a_kept_partitions_tick_wrote_before_the_tables_restore():
    """The restore reads a kept partition's changelog end as what the worker holds: the changes its tick made
    while the group rebalanced are in the changelog when the assignment returns, not at the next flush (else
    Faust's recovery reads them back one by one); a moved partition's are dropped, never sent."""

    async def run():
        w, out = make_worker("assign-delivers", score_batch_size=1)
        offs = {}
        await feed(w, range(6), offs)
        await feed(w, range(6), offs, partition=1, skus=[b"E", b"F"])
        for batch in day_batches(w, 6, offs) + day_batches(w, 6, offs, partition=1, skus=[b"E", b"F"]):
            await w.handle_batch(batch)  # day 6 closes day 5 on both partitions: their ticks start
        await w.on_revoked({0, 1})
        await w.settled()  # both ticks end while the group rebalances
        out.sent.clear()
        await w.on_assignment({0})
        written = {k: v for k, v, _ in out.on(w.changelog_topic)}
        return w, written

    w, written = asyncio.run(run())
    kept = {k: v for k, v in w.ingestor.store.items() if w.ingestor.spec.load(v).partition == 0}
    assert kept and all(written.get(k) == v for k, v in kept.items())
    assert not any(k in (b"E", b"F") for k in written)
    assert not w.kept_ticking and not w.parked & {0}


def test_a_partition_that_moves_while_its_tick_runs_has_it_stopped_and_its_new_owner_publishes_the_day():
    """Nothing of a stopped tick reaches the changelog or the commit, so the new owner, restored from the
    changelog and reading on from the commit, forecasts the day as a worker never revoked does."""

    async def run():
        (steady, steady_out, offs_steady), (moved, moved_out, offs) = await _fed_pair("steady-moved", "moved")
        await moved.flush()
        committed = dict(offs)
        changelog = len(moved_out.on(moved.changelog_topic))
        for batch in day_batches(moved, 6, offs):
            await moved.handle_batch(batch)
        tick = moved.ticks[0]

        async def next_day():  # day 7 closes day 6, whose tick waits for day 5's, the batch holding the lock
            for batch in day_batches(moved, 7, offs):
                await moved.handle_batch(batch)

        waiting = asyncio.ensure_future(next_day())
        await asyncio.sleep(0)
        await moved.on_revoked({0, 1})
        seen = {"the revoke did not wait for the tick": not tick.done() and not waiting.done()}
        moved.on_assigned({1})
        await asyncio.sleep(0.05)
        await waiting  # the batch that waited gives up: the day is the new owner's to close
        await moved.flush()
        seen |= {
            "no tick started after the move": 0 not in moved.ticks and not moved.ledger.held,
            "the tick was stopped": tick.cancelled(),
            "no state of it was written": len(moved_out.on(moved.changelog_topic)) == changelog,
            "its state is gone": not moved.ingestor.store and 0 not in moved.ready_partitions,
            "its offsets after the last flush are not committed": all(
                moved.ledger.committable(tp) in (None, committed[tp]) for tp in committed),
        }
        owner, owner_out = make_worker("new-owner", score_batch_size=1)
        _restore_into(owner, moved, moved_out)
        steady_out.sent.clear()
        await feed(steady, range(6, 9), offs_steady)
        await feed(owner, range(6, 9), dict(committed))
        return seen, steady, steady_out, owner_out

    seen, steady, steady_out, owner_out = asyncio.run(run())
    assert all(seen.values()), seen
    topic = steady.settings.topic_forecasts
    want, got = messages(steady_out, topic), messages(owner_out, topic)
    assert len(want) >= 3 * len(SKUS)
    key = lambda m: (m["as_of"], m["sku"])  # noqa: E731
    assert sorted(got, key=key) == sorted(want, key=key)


def test_a_worker_restored_from_the_changelogs_publishes_what_one_that_never_stopped_publishes():
    """What Faust's recovery does (the changelog into the table), then the same batches: the same forecasts."""

    async def run():
        steady, steady_out = make_worker("steady")
        first, first_out = make_worker("first")
        offs_steady, offs_first = {}, {}
        await feed(steady, range(5), offs_steady)
        await feed(first, range(5), offs_first)
        await first.flush()
        restored, restored_out = make_worker("restored")
        _restore_into(restored, first, first_out)
        restored_chunks = sum(is_pending_record(k) for k in restored.learning_store)
        steady_out.sent.clear()
        await feed(steady, range(5, 9), offs_steady)
        await feed(restored, range(5, 9), dict(offs_first))
        await restored.flush()
        return steady, steady_out, restored, restored_out, restored_chunks

    steady, steady_out, restored, restored_out, restored_chunks = asyncio.run(run())
    topic = steady.settings.topic_forecasts
    want, got = messages(steady_out, topic), messages(restored_out, topic)
    assert len(want) >= 3 * len(SKUS)
    key = lambda m: (m["as_of"], m["sku"])  # noqa: E731
    assert sorted(got, key=key) == sorted(want, key=key)
    # The pending forecasts came back from their records, which the worker then holds decoded only:
    # the table keeps no copy of them once restored or sent (the changelog has them for a restart).
    assert restored_chunks > 0 and sum(len(m) for m in restored.learning.pending[0].by_day.values()) > 0
    assert not any(is_pending_record(k) for k in restored.learning_store)
    assert any(is_pending_record(k) for k, v, _ in restored_out.on(restored.state[LEARNING_TABLE].topic) if v)


class Event:
    """What a Faust agent's ``stream.events()`` yields: the record as ``.message``."""

    def __init__(self, topic, partition, offset, key, value):
        self.message = dataclasses.make_dataclass("Msg", ["topic", "partition", "offset", "key", "value"])(
            topic, partition, offset, key, value)


def test_stock_counts_and_the_ticks_alert_marks_reach_one_changelog_in_order_and_commit_after_the_flush():
    """One producer writes the stock table: the last record of a SKU is what the worker holds."""

    async def run():
        producer = RecordingProducer()
        settings = Settings(forecaster="baseline", partitions=1, app_id="inproc-stock", topic_inventory="inventory",
                            low_cover_days=30.0)
        worker = dataclasses.replace(create_app(settings, metrics=Metrics.create(), producer=producer),
                                     app=FakeApp(CommitRecorder()))
        side = worker.side
        offsets: dict = {}
        for i, sku in enumerate(SKUS):
            body = {"schema_version": 1, "sku": sku.decode(), "on_hand": 3.0, "ts": T0 + i}
            await side.handle_inventory(Event("inventory", 0, i, sku, orjson.dumps(body)))
        await side.handle_inventory(Event("inventory", 0, 4, b"A", b'{"sku": "A"}'))  # invalid: dead-lettered
        held = list(worker.ledger.held)
        await feed(worker, range(30), offsets, qty=lambda day, i: 1 + day)  # ramping up: growth, short of stock
        await worker.flush()
        return worker, producer, held

    worker, producer, held = asyncio.run(run())
    assert (TP("inventory", 0), 5) in held  # the invalid record too is decided (its dead letter queued)
    assert worker.ledger.released[TP("inventory", 0)] == 5  # committed only after the flush
    records = producer.on(worker.state[INVENTORY_TABLE].topic)
    latest = {k: v for k, v, _ in records}
    assert latest == {k: worker.side.stock[k] for k in SKUS}  # the changelog's last word is the worker's state
    alerts = messages(producer, worker.settings.topic_alerts)
    marked = {a["sku"] for a in alerts if a["kind"] == "low_cover"}
    assert marked  # growing SKUs short of stock were alerted
    for sku in marked:
        on_hand, _, alerted_day = inventory.decode(latest[sku.encode()])
        assert on_hand == 3.0 and alerted_day != inventory.NOT_ALERTED  # the count and the tick's mark, one record


def test_a_tick_runs_beside_its_partitions_ingest_a_flush_skips_it_and_nothing_published_changes():
    """The consumer never waits for a tick: the partition's next batches are applied while a long tick runs.

    A flush during the tick sends none of the partition's changes (the
    changelog gets every SKU's mark of the day, or none) and commits none of
    its offsets; the next one sends them. What is published, and the states
    left, are what taking one step at a time (every tick awaited) gives.
    """
    skus = [b"S%03d" % i for i in range(40)]
    newcomers = [b"N%03d" % i for i in range(8)]

    async def run(beside: bool):
        worker, producer = make_worker(f"beside-{beside}", score_batch_size=4)
        offsets: dict = {}
        await feed(worker, range(3), offsets, skus=skus)
        await worker.flush()
        seen: dict = {}
        for batch in day_batches(worker, 3, offsets, skus=skus):  # day 3's events close day 2
            await worker.handle_batch(batch)
            if not beside:
                await worker.settled()
        tick = worker.ticks.get(0)
        seen["tick running after the closing batch"] = tick is not None and not tick.done()
        published = lambda: len(producer.on(worker.settings.topic_forecasts))  # noqa: E731
        at_close = published()
        waited = time.monotonic()
        # Let the tick run to its first micro-batch of forecasts (its model calls run on a thread).
        while published() == at_close and tick is not None and not tick.done() and time.monotonic() - waited < 30:
            await asyncio.sleep(0.0005)
        seen["forecasts published mid-tick"] = at_close < published() < at_close + len(skus) and \
            tick is not None and not tick.done()
        # More of day 3, for new SKUs and for SKUs of the tick (some scored already, some not, some
        # while the model runs on its thread: their states change under the tick).
        for batch in day_batches(worker, 3, offsets, skus=newcomers) + day_batches(worker, 3, offsets, skus=skus,
                                                                                    tag="again"):
            await worker.handle_batch(batch)
            await asyncio.sleep(0)
        seen["newcomers applied mid-tick"] = all(k in worker.ingestor.store for k in newcomers) and \
            tick is not None and not tick.done()
        committed = dict(worker.ledger.released)
        marked = lambda: {k: worker.ingestor.spec.load(v).forecast_day  # noqa: E731
                          for k, v, _ in producer.on(worker.changelog_topic) if k in skus}
        await worker.flush()
        seen["a flush mid-tick sends none of it"] = 20_000 + 2 not in marked().values() and \
            worker.ledger.released == committed
        await worker.settled()
        await worker.flush()
        seen["the next flush sends all of it"] = {marked()[k] for k in skus} == {20_000 + 2} and \
            worker.ledger.released != committed
        await feed(worker, range(4, 7), offsets, skus=skus + newcomers)
        await worker.flush()
        return seen, messages(producer, worker.settings.topic_forecasts), dict(worker.ingestor.store)

    seen, got, states = asyncio.run(run(beside=True))
    assert all(seen.values()), seen
    _, want, want_states = asyncio.run(run(beside=False))
    key = lambda m: (m["as_of"], m["sku"])  # noqa: E731
    assert len(got) >= 5 * len(skus) and sorted(got, key=key) == sorted(want, key=key)
    assert states == want_states
