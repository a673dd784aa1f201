"""Faust behind one adapter: everything that touches faust-streaming's private internals lives here.

Pinned: faust-streaming 0.15.3 (pyproject.toml). ``tests/unit/test_faust_contract.py``
checks, without a broker, that every private name used here still exists
with the shape relied on, so a Faust upgrade fails there first and loudly;
``tests/integration/test_commits.py`` checks the behaviour on a broker.

What the rest of the worker gets from here:

* :class:`TrendcastFaust`, a Faust app whose transport is ours (it
  overrides ``App._new_transport``);
* :func:`batching_transport`: a consumer that delivers whole fetched batches
  to an agent, one :class:`FetchMessage` per fetch holding a
  :class:`BatchMessage` per topic partition, whose ``records`` are the
  fetched ``ConsumerRecord``s. Why: Faust hands
  every record to its stream through an asyncio queue and a ``wait_first``
  per message; measured here (Tansu, 2 cores) a bare agent with
  ``take_events`` peaks at ~5.6k events/s while a raw aiokafka consumer reads
  200k+/s. Everything else of Faust stays: group membership, assignment,
  tables, changelogs, recovery;
* commits that are ours, not Faust's acks: the worker holds a batch in the
  :class:`CommitLedger` once it is applied and releases it once the flush
  that follows has delivered its state changes and outputs; the consumer
  commits only released offsets. This holds with either build of Faust's
  stream (the compiled ``faust._cython.streams`` bypasses ``Message.ack``);
* :func:`local_store`: a table's local key → value dict (the worker reads
  and writes table state directly and sends changelog records itself);
* tables that restore their changelogs in large fetches before Faust's
  recovery, which then finds nothing left to read (:mod:`stream_app.worker.faust_tables`);
* a consumer that long-polls for 100 ms, not Faust's 1.5 s, and joins the
  group as a static member when the app has a ``group_instance_id``
  (:class:`ShortPollConsumerThread`).

The contract relied on (Faust 0.15.3): ``App._new_transport``; the aiokafka
driver's ``Consumer._wait_next_records``, ``_read_offset``, ``_acked``,
``_acked_index``, ``_committed_offset``, ``_new_offset``,
``_filter_tps_with_pending_acks``, ``_buffered_partitions``, ``_to_message``,
``_unacked_messages``, ``_thread._ensure_consumer()`` (aiokafka's
``last_poll_timestamp``), ``Consumer._new_consumer_thread`` and the thread's
``_create_worker_consumer`` (aiokafka's ``_fetch_max_wait_ms`` and
``_group_instance_id``, read when the consumer starts); a table's ``data`` store keeping its dict in ``.data``;
and those of :mod:`stream_app.worker.faust_tables`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import faust
from faust.serializers.schemas import Schema
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

from stream_app.worker.broker import true_highwaters
from stream_app.worker.faust_tables import RestoringTable, TrendcastTables, kafka_client

# How long the consumer's fetch waits for records before the broker answers empty. Faust's is 1.5 s, and
# a request to the same broker connection queues behind a waiting fetch: the recovery's ListOffsets calls
# of every restart and rebalance waited ~1.3 s each (2.6 s of a 13.9-14.4 s restart with 100k SKUs).
FETCH_MAX_WAIT_MS = 100

# A healthy fetcher hears about every partition without buffered records at least every FETCH_MAX_WAIT_MS
# (plus a busy loop's delays); an older answer is not trusted to mean "no more".
STALE_POLL_MS = 3000


class BatchMessage(Message):
    """A Faust message standing for a batch of records of one topic partition.

    ``records`` are aiokafka ``ConsumerRecord``s (``offset``, ``key``,
    ``value``, ``timestamp`` in epoch ms), in offset order.
    """

    __slots__ = ("records",)

    def __init__(self, tp: TP, records: list, generation_id: int) -> None:
        last = records[-1]
        super().__init__(
            topic=tp.topic,
            partition=tp.partition,
            offset=last.offset,
            timestamp=last.timestamp / 1000.0,
            timestamp_type=last.timestamp_type,
            headers=None,
            key=None,
            value=None,
            checksum=None,
            tp=tp,
            generation_id=generation_id,
        )
        self.records = records

    def on_final_ack(self, consumer: Any) -> bool:
        # Faust's pure-Python stream calls this when the agent is done with the
        # batch. The offsets are not Faust's to commit (see CommitLedger): we
        # only let Faust forget the message.
        self.acked = True
        consumer._unacked_messages.discard(self)
        return True


class FetchMessage(BatchMessage):
    """The batches of one fetch response, one :class:`BatchMessage` per source topic partition.

    One Faust message per fetch, not per partition: Faust's drain loop and
    the agent's stream each give the event loop a turn per message, and
    while forecast ticks run a turn takes tens of milliseconds, so a fetch
    of twelve partitions reached the agent over a second or more (the
    ingest-latency p99 of ``trendcast bench``). Faust tracks the first
    batch's partition through this message; :meth:`BatchingConsumer.getmany`
    sets the others' read offsets itself.
    """

    __slots__ = ("batches",)

    def __init__(self, batches: list[BatchMessage]) -> None:
        first = batches[0]
        super().__init__(first.tp, first.records, first.generation_id)
        self.batches = batches


class CommitLedger:
    """Which source offsets may be committed: those whose effects are delivered to Kafka.

    The worker calls :meth:`hold` when it has decided records (their state
    changes are in the store and marked dirty, their outputs queued),
    :meth:`take` right before a flush and :meth:`release` once the flush
    delivered everything; the consumer commits :meth:`committable`. So a
    committed offset never runs ahead of the state and outputs it caused,
    however Faust's stream acks messages: its compiled stream
    (``faust._cython.streams``) records a message's offset itself and never
    calls :meth:`BatchMessage.on_final_ack`, so nothing here may depend on
    Faust's acking.

    Batches of one partition are applied in offset order by one agent, so
    the committable offset of a partition only grows.
    """

    def __init__(self) -> None:
        self.held: list[tuple[TP, int]] = []
        self.released: dict[TP, int] = {}
        # Awaited before the final commit when the consumer stops, so the
        # state of the last batches reaches Kafka and their offsets commit.
        self.before_final_commit: Callable[[], Awaitable[Any]] | None = None

    def hold(self, tp: TP, offset: int) -> None:
        """Every record of ``tp`` before ``offset`` is decided and its effects are in the store: commit after the next flush."""
        self.held.append((tp, offset))

    def take(self, skip: frozenset[int] = frozenset()) -> list[tuple[TP, int]]:
        """The batches applied so far (their effects are in the store), to release after the next flush.

        Those of the partitions in ``skip`` stay held (their state is not sent yet).
        """
        held = [h for h in self.held if h[0].partition not in skip]
        self.held = [h for h in self.held if h[0].partition in skip]
        return held

    def release(self, taken: list[tuple[TP, int]]) -> None:
        """The flush that followed :meth:`take` delivered everything: these offsets may be committed."""
        released = self.released
        for tp, offset in taken:
            if offset > released.get(tp, -1):
                released[tp] = offset

    def committable(self, tp: TP) -> int | None:
        """The offset to commit for ``tp`` (the next record to read), or None if nothing was released."""
        return self.released.get(tp)

    def of_partitions(self, partitions: set[int]) -> set[TP]:
        """Every topic partition held or released whose partition number is in ``partitions``."""
        return {tp for tp, _ in self.held if tp.partition in partitions} | {
            tp for tp in self.released if tp.partition in partitions}

    def forget(self, tps: set[TP]) -> None:
        """Drop partitions that moved to another worker (after their final commit)."""
        for tp in tps:
            self.released.pop(tp, None)
        self.held = [(tp, o) for tp, o in self.held if tp not in tps]


class BatchSchema(Schema):
    """Hands the batch message's records to the agent untouched."""

    def loads_key(self, app: Any, message: Message, **kwargs: Any) -> Any:
        return None

    def loads_value(self, app: Any, message: Message, **kwargs: Any) -> Any:
        return message


class ShortPollConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, its aiokafka consumer long-polling :data:`FETCH_MAX_WAIT_MS`.

    With the app's ``group_instance_id`` set, the consumer is a static group
    member (KIP-345; Faust has no setting for it): a worker killed and
    restarted under the same name gets its partitions back without the
    broker first waiting for the dead member's session to time out
    (restart after SIGKILL with 100k SKUs: 13.3-13.4 s dynamic, 8.1-8.2 s
    static, docs/BENCHMARKS.md).
    """

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Both read by start(), not by the constructor Faust calls with its own arguments.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # Faust passes a fixed 1500
        consumer._group_instance_id = getattr(self.app, "group_instance_id", None)
        return consumer


class BatchingConsumer(faust_aiokafka.Consumer):
    """A Faust aiokafka consumer that batches records of the configured topics and commits from a ledger."""

    def _new_consumer_thread(self) -> ShortPollConsumerThread:
        return ShortPollConsumerThread(self, loop=self.loop, beacon=self.beacon)

    batch_topics: frozenset[str] = frozenset()
    ledger_topics: frozenset[str] = frozenset()  # committed from the ledger: the batch topics and the side inputs
    ledger: CommitLedger | None = None

    async def highwaters(self, *partitions: TP) -> Any:
        # Faust's table recovery reads changelogs up to these offsets; see
        # stream_app.worker.broker.true_highwaters for why they are checked.
        reported = dict(await super().highwaters(*partitions))
        bootstrap, auth = kafka_client(self.app)
        return await true_highwaters(bootstrap, reported, **auth)

    def unread(self, tp: TP, taken: int | None) -> bool:
        """True when ``tp`` has records in Kafka the ingest has not taken in (as of the last fetch response).

        ``taken``: the offset after the last record the ingest took in, None
        before the first. Records yielded to Faust's stream but not processed
        yet count as unread: a batch can wait seconds behind another
        partition's in the agent's buffer, and closing days meanwhile would
        make it late.

        Before the first fetch response of ``tp`` nothing is known, which counts as unread: a worker
        starting on a backlog must not close days before every topic's first records are in. So does
        a last response older than :data:`STALE_POLL_MS`.
        """
        try:
            hw = self.highwater(tp)
            polled = self._thread._ensure_consumer().last_poll_timestamp(tp)
        except Exception:  # noqa: BLE001 - not started or not assigned: nothing to read here
            return False
        if hw is None or polled is None:
            return True  # no fetch response for it yet: records may well be there, do not close days without them
        if time.time() * 1000 - polled > STALE_POLL_MS:
            # The fetcher thread has not heard from the broker lately (a starved CPU, a long tick): its
            # high-water mark may predate records already in Kafka, and closing days on it makes them late.
            return True
        if not hw:
            return False
        pos = taken if taken is not None else self._committed_offset.get(tp) or 0
        return hw > pos

    # --- commits: the ledger's offsets, not Faust's acks ----------------------
    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterator[TP]:
        # Faust's commit walks the partitions with acked offsets; ours have
        # released ones in the ledger instead.
        tps = set(super()._filter_tps_with_pending_acks(topics))
        if self.ledger is not None:
            tps.update(tp for tp in self.ledger.released
                       if topics is None or tp in topics or tp.topic in topics)
        return iter(tps)

    def _new_offset(self, tp: TP) -> int | None:
        if tp.topic not in self.ledger_topics:
            return super()._new_offset(tp)
        # Faust's streams append each message's offset to its ack list (the
        # compiled one for batch messages too); that list is not ours to
        # commit from: a record's state reaches Kafka at our flush. Drop it.
        self._acked.pop(tp, None)
        self._acked_index.pop(tp, None)
        return self.ledger.committable(tp) if self.ledger is not None else None

    async def commit_released(self, tps: set[TP]) -> bool:
        """Commit what the ledger released for ``tps`` now (before they are revoked)."""
        for tp in tps:
            # Faust forgets a revoked partition's committed offset before the
            # app hears of the revocation; the ledger's offset is newer anyway.
            self._committed_offset.pop(tp, None)
        return await self.commit(set(tps))

    async def on_stop(self) -> None:
        hook = self.ledger.before_final_commit if self.ledger is not None else None
        if hook is not None:
            try:
                await hook()
            except Exception as exc:  # noqa: BLE001 - uncommitted records are re-read after restart
                self.log.warning("final flush before the last commit failed: %r", exc)
        await super().on_stop()

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # type: ignore[override]
        # Faust's getmany wraps every record in a ConsumerMessage; for the
        # batch topics we take the fetched record lists as they are.
        records, active = await self._wait_next_records(timeout)
        if records is None or self.should_stop:
            return
        if not self.flow_active:
            # As Faust's getmany: records fetched while flow stopped (a
            # rebalance) are dropped and the consumer seeks back to committed.
            try:
                await self.perform_seek()
            except Exception as exc:  # noqa: BLE001 - Faust logs and carries on here too
                self.log.warning("seek after paused flow failed: %r", exc)
            return
        generation = self.app.consumer_generation_id
        batch_topics = self.batch_topics
        batches = []
        for tp, recs in records.items():
            if not recs or not (active is None or tp in active or tp in self._buffered_partitions):
                continue
            if self.app.consumer_generation_id != generation or not self.flow_active:
                return
            if tp.topic in batch_topics:
                batches.append(BatchMessage(tp, recs, generation))
                continue
            for rec in recs:
                yield tp, self._to_message(tp, rec)
        if not batches or self.app.consumer_generation_id != generation or not self.flow_active:
            return
        read_offset = self._read_offset
        for b in batches:
            read_offset[b.tp] = b.offset
        # Faust's drain loop drops a message whose offset is below the last
        # read one and records a gap when they differ by more than one: it
        # sees the first batch's partition, at its last record's offset.
        first = batches[0]
        read_offset[first.tp] = first.offset - 1
        yield first.tp, FetchMessage(batches)


def batching_transport(topics: frozenset[str], ledger: CommitLedger, side_topics: frozenset[str] = frozenset()) -> type:
    """A Faust transport class whose consumer batches ``topics`` and commits what ``ledger`` released.

    ``side_topics`` are read record by record (Faust's own path) and also
    committed from the ledger: their records change tables too.
    """
    consumer_cls = type(
        "TrendcastConsumer", (BatchingConsumer,),
        {"batch_topics": topics, "ledger_topics": topics | side_topics, "ledger": ledger}
    )
    return type("TrendcastTransport", (faust_aiokafka.Transport,), {"Consumer": consumer_cls})


class TrendcastFaust(faust.App):
    """A Faust app whose consumer delivers source batches (:func:`batching_transport`) and whose tables restore in bulk."""

    def __init__(self, *args: Any, transport_cls: type, group_instance_id: str | None = None, **kwargs: Any) -> None:
        self._transport_cls = transport_cls
        self.group_instance_id = group_instance_id  # static membership, see ShortPollConsumerThread
        kwargs.setdefault("Table", RestoringTable)
        kwargs.setdefault("TableManager", TrendcastTables)
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return self._transport_cls(self.conf.broker_consumer, self)


def local_store(table: Any) -> dict[bytes, bytes]:
    """A Faust table's local key -> value dict (read and written directly; the worker sends its changelog)."""
    return getattr(table.data, "data", table.data)
