"""Consumer lag per partition, in messages and in seconds, and the probe that reads its inputs.

Three gauges, one series per assigned partition (never per SKU), set every
``lag_interval_s`` by a timer of the worker:

* ``trendcast_consumer_lag_messages``: the broker's end offset (high
  watermark, from ListOffsets) minus the consumer group's committed offset
  (from OffsetFetch), never below zero: what ``kafka-consumer-groups.sh
  --describe`` and lag exporters report. It counts messages not yet
  committed, so right after a burst it includes records being processed and
  up to one commit interval of finished ones.
* ``trendcast_consumer_lag_seconds``: how far the worker's newest applied
  record is behind the newest record of the partition, in seconds of Kafka
  record timestamp (CreateTime as the producer set it, or LogAppendTime if
  the topic says so). The worker's position is the offset after the newest
  record it took in, or the group's committed offset if that is further
  (the catalog is read by the side inputs: the committed offset only). At
  or past the end offset the lag is 0. Otherwise the probe fetches the
  partition's tail from ``end - 1`` and takes the timestamp of the last
  record returned, and subtracts the timestamp of the newest applied record
  (the worker's own, or the record at ``position - 1`` fetched from the
  broker; a group that applied nothing yet is measured from the partition's
  oldest record). So a worker 3 hours behind a live stream reads ~10,800
  whatever the message rate, and the figure does not move while no new
  record arrives.
* ``trendcast_event_time_lag_seconds``: wall clock minus the partition's
  event time (the newest event time the worker has seen on it, the events'
  own ``ts``), for live streams: how old the newest forecastable data is.
  A replay of old data reads its age, not a fault.

kafka-lag-exporter (archived) estimated time lag by interpolating sampled
(offset, time) pairs; this reads the two record timestamps it needs, which
costs one small fetch per lagging partition per interval and nothing for a
partition that is caught up.

Limitation on the embedded broker (Tansu): ListOffsets answers with the
first offset of a partition's last batch + 1, so the end offset, and with it
both lags, reads low by up to one producer batch; a group committed past that
point shows 0. On Apache Kafka the end offset is exact.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

log = logging.getLogger(__name__)

TopicPart = tuple[str, int]


def partition_lag(end: int, committed: int | None) -> int:
    """Messages between ``committed`` and ``end`` (offsets); a group with no commit is behind by ``end``.

    >>> partition_lag(120, 100), partition_lag(120, None), partition_lag(90, 100)
    (20, 120, 0)
    """
    if committed is None or committed < 0:
        return max(0, end)
    return max(0, end - committed)


def lags(ends: Mapping[TopicPart, int], committed: Mapping[TopicPart, int | None]) -> dict[TopicPart, int]:
    """Lag of every partition in ``ends`` (messages); partitions without an end offset are left out."""
    return {tp: partition_lag(end, committed.get(tp)) for tp, end in ends.items() if end is not None}


def positions(committed: Mapping[TopicPart, int | None],
              taken: Mapping[TopicPart, tuple[int, int]]) -> dict[TopicPart, int]:
    """The offset after the newest record applied: the worker's own (``taken``: offset, timestamp ms) or the commit.

    >>> positions({("t", 0): 4, ("t", 1): None, ("t", 2): 9}, {("t", 0): (6, 0), ("t", 2): (3, 0)})
    {('t', 0): 7, ('t', 1): 0, ('t', 2): 9}
    """
    out = {}
    for tp, off in committed.items():
        mine = taken.get(tp)
        out[tp] = max(off if off is not None and off >= 0 else 0, mine[0] + 1 if mine else 0)
    return out


def seconds_behind(newest_ms: int, applied_ms: int) -> float:
    """Seconds of record timestamp from the newest applied record to the partition's newest, never below zero.

    >>> seconds_behind(1_700_000_090_000, 1_700_000_030_000), seconds_behind(5_000, 9_000)
    (60.0, 0.0)
    """
    return max(0.0, (newest_ms - applied_ms) / 1000.0)


class LagProbe:
    """Reads end offsets and a group's committed offsets from the brokers (aiokafka, own connections).

    ``client``: extra aiokafka arguments (security,
    :func:`stream_app.worker.security.aiokafka_kwargs`). Call :meth:`close` when done.
    """

    def __init__(self, bootstrap: str, group_id: str, *, client: Mapping[str, Any] | None = None) -> None:
        self.bootstrap = bootstrap
        self.group_id = group_id
        self._client = dict(client or {})
        self._admin: Any = None
        self._consumer: Any = None

    async def _start(self) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        if self._admin is None:
            self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000,
                                              **self._client)
            await self._admin.start()
        if self._consumer is None:
            # No group: this consumer only asks for end offsets and never joins the worker's group.
            self._consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                              enable_auto_commit=False, auto_offset_reset="earliest",
                                              request_timeout_ms=5000, **self._client)
            await self._consumer.start()

    async def read(self, partitions: Iterable[TopicPart]) -> tuple[dict[TopicPart, int], dict[TopicPart, int | None]]:
        """End offsets and committed offsets (``None``: nothing committed) of ``partitions``."""
        from aiokafka import TopicPartition

        tps = [TopicPartition(t, p) for t, p in partitions]
        if not tps:
            return {}, {}
        await self._start()
        ends = await self._consumer.end_offsets(tps)
        offsets = await self._admin.list_consumer_group_offsets(self.group_id, partitions=tps)
        committed: dict[TopicPart, int | None] = {}
        for tp in tps:
            meta = offsets.get(tp)
            committed[(tp.topic, tp.partition)] = meta.offset if meta is not None and meta.offset >= 0 else None
        return {(tp.topic, tp.partition): off for tp, off in ends.items()}, committed

    async def lags(self, partitions: Iterable[TopicPart]) -> dict[TopicPart, int]:
        """Lag of each of ``partitions``, in messages."""
        ends, committed = await self.read(partitions)
        return lags(ends, committed)

    async def timestamps(self, offsets: Mapping[TopicPart, int], *, last: bool,
                         timeout_s: float = 3.0) -> dict[TopicPart, int]:
        """Kafka timestamp (epoch ms) of the record at each offset (``last``: of the newest record from there on).

        An offset before the log start reads the oldest record (retention
        deleted the one asked for). Partitions that return nothing within
        ``timeout_s`` are left out.
        """
        from aiokafka import TopicPartition

        if not offsets:
            return {}
        await self._start()
        consumer = self._consumer
        wanted = {TopicPartition(t, p): off for (t, p), off in offsets.items()}
        consumer.assign(list(wanted))
        got: dict[TopicPart, int] = {}
        try:
            for tp, off in wanted.items():
                consumer.seek(tp, max(0, off))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while len(got) < len(wanted) and loop.time() < deadline:
                missing = [tp for tp in wanted if (tp.topic, tp.partition) not in got]
                fetched = await consumer.getmany(*missing, timeout_ms=int(1000 * min(1.0, timeout_s)))
                for tp, records in fetched.items():
                    # A compressed batch may start before the offset asked for.
                    records = [r for r in records if r.offset >= wanted[tp]] or records
                    if records:
                        got[(tp.topic, tp.partition)] = (records[-1] if last else records[0]).timestamp
        finally:
            consumer.unsubscribe()  # no background fetching between probes
        return got

    async def seconds_behind(self, ends: Mapping[TopicPart, int], position: Mapping[TopicPart, int],
                             applied_ms: Mapping[TopicPart, int]) -> dict[TopicPart, float]:
        """Lag in seconds of record timestamp of each partition of ``ends`` (see the module's docstring).

        ``position``: the offset after the newest applied record;
        ``applied_ms``: that record's timestamp where the caller knows it
        (others are fetched). A partition whose timestamps could not be read
        is left out.
        """
        behind = [tp for tp, end in ends.items() if end is not None and position.get(tp, 0) < end]
        out = {tp: 0.0 for tp, end in ends.items() if end is not None and tp not in behind}
        if not behind:
            return out
        newest = await self.timestamps({tp: ends[tp] - 1 for tp in behind}, last=True)
        unknown = {tp: position.get(tp, 0) - 1 for tp in behind if tp not in applied_ms}
        applied = dict(applied_ms)
        applied.update(await self.timestamps(unknown, last=False))
        for tp in behind:
            if tp in newest and tp in applied:
                out[tp] = seconds_behind(newest[tp], applied[tp])
        return out

    async def close(self) -> None:
        consumer, admin, self._consumer, self._admin = self._consumer, self._admin, None, None
        try:
            if consumer is not None:
                await consumer.stop()
            if admin is not None:
                await admin.close()
        except Exception:  # noqa: BLE001 - closing clients whose broker is gone
            log.debug("closing the lag probe failed", exc_info=True)


def install(worker: Any) -> None:
    """Register a timer on the worker's Faust app that sets the lag gauges (see the module's docstring).

    Only this worker's assigned partitions get a series, so summing over
    several workers counts each partition once; series of partitions that
    moved away are removed.
    """
    from stream_app.worker.security import aiokafka_kwargs

    settings, app, metrics = worker.settings, worker.app, worker.metrics
    if not settings.lag_interval_s:
        return
    probe = LagProbe(settings.bootstrap, settings.app_id, client=aiokafka_kwargs(settings))
    sources = set(settings.source_topics) | {settings.topic_catalog}
    shown: dict[str, set] = {"messages": set(), "seconds": set(), "event_time": set()}

    def publish(kind: str, gauge: Any, values: Mapping[Any, float]) -> None:
        for labels in shown[kind] - set(values):
            gauge.remove(*labels)
        for labels, value in values.items():
            gauge.labels(*labels).set(value)
        shown[kind] = set(values)

    @app.timer(settings.lag_interval_s)
    async def read_consumer_lag() -> None:
        try:
            assigned = {(tp.topic, tp.partition) for tp in app.consumer.assignment() if tp.topic in sources}
            ends, committed = await probe.read(sorted(assigned))
            taken = dict(worker.taken)
            position = positions(committed, taken)
            applied = {tp: taken[tp][1] for tp in position if tp in taken and taken[tp][0] + 1 == position[tp]}
            seconds = await probe.seconds_behind(ends, position, applied)
        except Exception as exc:  # noqa: BLE001 - a failed read must not stop the worker; the gauges keep their value
            metrics.lag_probe_errors.inc()
            log.warning("reading consumer lag failed: %s", exc)
            await probe.close()  # reconnect next time
            return
        publish("messages", metrics.consumer_lag,
                {(t, str(p)): v for (t, p), v in lags(ends, committed).items()})
        publish("seconds", metrics.consumer_lag_seconds, {(t, str(p)): v for (t, p), v in seconds.items()})
        now = time.time()
        clocks = worker.ingestor.clocks
        mine = {p for _, p in assigned}
        publish("event_time", metrics.event_time_lag, {
            (str(p),): max(0.0, now - clocks[p].newest / 1000.0)
            for p in mine if p in clocks and clocks[p].newest is not None})

    @app.on_before_shutdown.connect
    async def close_lag_probe(sender: Any, **kwargs: Any) -> None:
        await probe.close()
