"""Deliver whole fetched batches to a Faust agent, one message per topic partition.

Why: Faust hands every record to its stream through an asyncio queue and a
``wait_first`` per message. Measured here (Tansu, 2 cores) a bare agent with
``take_events`` peaks at ~5.6k events/s while a raw aiokafka consumer reads
200k+/s. For the topics named as batch topics, this consumer instead yields
one :class:`BatchMessage` per topic partition and fetch, whose value is the
list of ``(offset, key, value)`` records. Everything else of Faust stays:
group membership, assignment, tables, changelogs, recovery, commits.

Offsets: the batch message carries the offset of its last record, and the
read offset is set so Faust sees no gap. When the agent is done with the
batch, Faust acks the batch message; we do not ack the records then but hand
them to :class:`AckLedger`, which acks them after their table changes are
sent to the changelog. Faust's commit flushes the producer before it commits
offsets, so a committed offset never runs ahead of the state it produced.

This leans on Faust's consumer internals (``_wait_next_records``,
``_read_offset``, ``_acked``), which is why faust-streaming is pinned.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from faust.serializers.schemas import Schema
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from stream_app.broker import true_highwaters


class BatchMessage(Message):
    """A Faust message standing for a batch of records of one topic partition.

    ``records`` are aiokafka ``ConsumerRecord``s (``offset``, ``key``,
    ``value``, ``timestamp`` in epoch ms), in offset order.
    """

    __slots__ = ("records", "_on_done")

    def __init__(
        self, tp: TP, records: list, generation_id: int, on_done: Callable[["BatchMessage"], None]
    ) -> None:
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
        self._on_done = on_done

    def on_final_ack(self, consumer: Any) -> bool:
        # The records are acked by the AckLedger once their state is in the
        # changelog; acking here could commit offsets ahead of the state.
        self.acked = True
        consumer._unacked_messages.discard(self)
        self._on_done(self)
        return True


def ack_offsets(consumer: Any, tp: TP, offsets: list[int]) -> None:
    """Mark ``offsets`` of ``tp`` as processed, as Faust's ``Consumer.ack`` does one by one.

    Faust's own bookkeeping (faust-streaming 0.15.3, pinned): the commit
    takes the longest run of consecutive acked offsets.
    """
    with ack_lock:
        committed = consumer._committed_offset[tp]
        index = consumer._acked_index[tp]
        new = [o for o in offsets if (committed is None or o >= committed) and o not in index]
        index.update(new)
        consumer._acked[tp].extend(new)
        consumer._n_acked += len(new)
    notify(consumer._waiting_for_ack)


class AckLedger:
    """Records whose processing is done but whose state is not yet in the changelog."""

    def __init__(self) -> None:
        self.pending: list[BatchMessage] = []
        self.consumer: Any = None

    def hold(self, batch: BatchMessage) -> None:
        """Called when the agent has finished a batch."""
        self.pending.append(batch)

    def take(self) -> list[BatchMessage]:
        """The batches finished so far (their effects are in the store), to ack after the next flush."""
        pending, self.pending = self.pending, []
        return pending

    def ack(self, batches: list[BatchMessage]) -> int:
        """Ack the records of ``batches`` (once their state and outputs are delivered). Returns records acked."""
        if self.consumer is None:
            return 0
        n = 0
        for batch in batches:
            ack_offsets(self.consumer, batch.tp, [r.offset for r in batch.records])
            n += len(batch.records)
        return n


class BatchSchema(Schema):
    """Hands the batch message's records to the agent untouched."""

    def loads_key(self, app: Any, message: Message, **kwargs: Any) -> Any:
        return None

    def loads_value(self, app: Any, message: Message, **kwargs: Any) -> Any:
        return message


class BatchingConsumer(faust_aiokafka.Consumer):
    """A Faust aiokafka consumer that batches records of the configured topics."""

    batch_topics: frozenset[str] = frozenset()
    ledger: AckLedger | None = None

    async def highwaters(self, *partitions: TP) -> Any:
        # Faust's table recovery reads changelogs up to these offsets; see
        # stream_app.broker.true_highwaters for why they are checked.
        reported = dict(await super().highwaters(*partitions))
        bootstrap = ",".join(f"{u.host}:{u.port or 9092}" for u in self.app.conf.broker_consumer)
        conf = self.app.conf
        auth = faust_aiokafka.credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context)
        return await true_highwaters(bootstrap, reported, **auth)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # type: ignore[override]
        # Faust's getmany wraps every record in a ConsumerMessage; for the
        # batch topics we take the fetched record lists as they are.
        if self.ledger is not None:
            self.ledger.consumer = self
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
        read_offset = self._read_offset
        on_done = self.ledger.hold if self.ledger else _noop
        for tp, recs in records.items():
            if not recs or not (active is None or tp in active or tp in self._buffered_partitions):
                continue
            if self.app.consumer_generation_id != generation or not self.flow_active:
                break
            if tp.topic not in batch_topics:
                for rec in recs:
                    yield tp, self._to_message(tp, rec)
                continue
            # Holes in the offsets (compaction, transaction markers) must be
            # marked as gaps, or Faust never commits past them.
            prev = read_offset[tp]
            expected = None if prev is None else prev + 1
            if expected is not None and recs[-1].offset - expected != len(recs) - 1:
                for rec in recs:
                    if rec.offset > expected:
                        await self._add_gap(tp, expected, rec.offset - 1)
                    expected = rec.offset + 1
            # Faust's drain loop compares each message's offset with the last
            # read one and records a gap when they differ by more than one.
            read_offset[tp] = recs[-1].offset - 1
            yield tp, BatchMessage(tp, recs, generation, on_done)


def _noop(batch: BatchMessage) -> None:
    return None


def batching_transport(topics: frozenset[str], ledger: AckLedger) -> type:
    """A Faust transport class whose consumer batches ``topics`` and reports to ``ledger``."""
    consumer_cls = type(
        "TrendcastConsumer", (BatchingConsumer,), {"batch_topics": topics, "ledger": ledger}
    )
    return type("TrendcastTransport", (faust_aiokafka.Transport,), {"Consumer": consumer_cls})
