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
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from faust.serializers.schemas import Schema
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

from stream_app.broker import true_highwaters


class BatchMessage(Message):
    """A Faust message standing for a batch of records of one topic partition."""

    __slots__ = ("records", "_on_done")

    def __init__(self, tp: TP, records: list[Message], on_done: Callable[["BatchMessage"], None]) -> None:
        last = records[-1]
        super().__init__(
            topic=tp.topic,
            partition=tp.partition,
            offset=last.offset,
            timestamp=last.timestamp,
            timestamp_type=last.timestamp_type,
            headers=None,
            key=None,
            value=None,
            checksum=None,
            tp=tp,
            generation_id=last.generation_id,
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


class AckLedger:
    """Records whose processing is done but whose state is not yet in the changelog."""

    def __init__(self) -> None:
        self.pending: list[BatchMessage] = []
        self.consumer: Any = None

    def hold(self, batch: BatchMessage) -> None:
        """Called when the agent has finished a batch."""
        self.pending.append(batch)

    def release(self) -> int:
        """Ack every held record (call right after the changelog sends are queued). Returns records acked."""
        pending, self.pending = self.pending, []
        n = 0
        if self.consumer is None:
            return 0
        ack = self.consumer.ack
        for batch in pending:
            for m in batch.records:
                ack(m)
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
        return await true_highwaters(bootstrap, reported)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:  # type: ignore[override]
        batches: dict[TP, list[Message]] = {}
        batch_topics = self.batch_topics
        async for tp, message in super().getmany(timeout):
            if tp.topic in batch_topics:
                records = batches.get(tp)
                if records is None:
                    records = batches[tp] = []
                records.append(message)
            else:
                yield tp, message
        read_offset = self._read_offset
        for tp, records in batches.items():
            prev = read_offset[tp]
            # Holes in the offsets (compaction, transaction markers) must be
            # marked as gaps, or Faust never commits past them.
            expected = None if prev is None else prev + 1
            for m in records:
                if expected is not None and m.offset > expected:
                    await self._add_gap(tp, expected, m.offset - 1)
                expected = m.offset + 1
            # Faust's drain loop compares each message's offset with the last
            # read one and records a gap when they differ by more than one.
            read_offset[tp] = records[-1].offset - 1
            ledger = self.ledger
            yield tp, BatchMessage(tp, records, ledger.hold if ledger else _noop)


def _noop(batch: BatchMessage) -> None:
    return None


def batching_transport(topics: frozenset[str], ledger: AckLedger) -> type:
    """A Faust transport class whose consumer batches ``topics`` and reports to ``ledger``."""
    consumer_cls = type(
        "TrendcastConsumer", (BatchingConsumer,), {"batch_topics": topics, "ledger": ledger}
    )
    return type("TrendcastTransport", (faust_aiokafka.Transport,), {"Consumer": consumer_cls})
