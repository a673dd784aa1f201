"""Consumer lag per partition, computed the standard way, and the probe that reads its inputs.

Lag of a partition = the broker's end offset (high watermark, from
ListOffsets) minus the consumer group's committed offset (from OffsetFetch),
never below zero: what ``kafka-consumer-groups.sh --describe`` and lag
exporters report. It counts messages not yet committed, so right after a
burst it includes records being processed and up to one commit interval of
finished ones.

Limitation on the embedded broker (Tansu): ListOffsets answers with the
first offset of a partition's last batch + 1, so the end offset, and with it
the lag, reads low by up to one producer batch; a group committed past that
point shows 0. On Apache Kafka the end offset is exact.
"""

from __future__ import annotations

import logging
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
                                              enable_auto_commit=False, request_timeout_ms=5000, **self._client)
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
    """Register a timer on the worker's Faust app that sets ``trendcast_consumer_lag_messages``.

    Only this worker's assigned source partitions get a series, so summing
    over several workers counts each partition once; series of partitions
    that moved away are removed.
    """
    from stream_app.worker.security import aiokafka_kwargs

    settings, app, metrics = worker.settings, worker.app, worker.metrics
    if not settings.lag_interval_s:
        return
    probe = LagProbe(settings.bootstrap, settings.app_id, client=aiokafka_kwargs(settings))
    sources = set(settings.source_topics) | {settings.topic_catalog}
    shown: set[TopicPart] = set()

    @app.timer(settings.lag_interval_s)
    async def read_consumer_lag() -> None:
        try:
            assigned = {(tp.topic, tp.partition) for tp in app.consumer.assignment() if tp.topic in sources}
            current = await probe.lags(sorted(assigned))
        except Exception as exc:  # noqa: BLE001 - a failed read must not stop the worker; the gauges keep their value
            metrics.lag_probe_errors.inc()
            log.warning("reading consumer lag failed: %s", exc)
            await probe.close()  # reconnect next time
            return
        for topic, partition in shown - set(current):
            metrics.consumer_lag.remove(topic, str(partition))
        for (topic, partition), lag in current.items():
            metrics.consumer_lag.labels(topic, str(partition)).set(lag)
        shown.clear()
        shown.update(current)

    @app.on_before_shutdown.connect
    async def close_lag_probe(sender: Any, **kwargs: Any) -> None:
        await probe.close()
