"""Everything the worker writes to Kafka: changelog states, forecasts, alerts, dead letters.

Through one librdkafka producer (confluent-kafka), not Faust's aiokafka one:
measured here, librdkafka delivers ~425k messages/s, aiokafka ~50k/s, and
the worker writes about one message per event it consumes. ``produce`` only
queues; :meth:`Publisher.flush` waits for delivery, and the worker acks the
source records of a flush only after it (at-least-once: no committed offset
runs ahead of the state and outputs it produced).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from stream_app.core.ingest import Rejected
from stream_app.worker.metrics import Metrics
from stream_app.worker.security import librdkafka_config
from stream_app.settings import Settings

SCHEMA_VERSION = 1
log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """Messages could not be delivered; the worker must not ack their sources."""


def dead_letter_value(r: Rejected, source_topic: str, now_ms: int) -> bytes:
    """The dead-letter message for a rejected record: the original bytes, where it came from, why."""
    raw = r.value or b""
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return orjson.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "source_topic": source_topic,
            "partition": r.partition,
            "offset": r.offset,
            "key": None if r.key is None else r.key.decode("utf-8", errors="replace"),
            "value_b64": base64.b64encode(raw).decode("ascii"),
            "value_text": text,
            "reason": {"code": r.code, "message": r.message},
            "at": now_ms,
        }
    )


def producer_config(settings: Settings) -> dict:
    """librdkafka settings for the worker's producer."""
    return {
        "bootstrap.servers": settings.bootstrap,
        "linger.ms": 20,
        "batch.size": 1 << 20,
        "queue.buffering.max.messages": 1_000_000,
        # Keyed messages land where the Java client and aiokafka put them.
        "partitioner": "murmur2_random",
        "acks": "all",
        # Never give up on a message because the broker is away: an outage of
        # minutes is ordinary, and the worker waits it out (Publisher.flush).
        "message.timeout.ms": 0,
        # Retries after an outage must neither duplicate nor reorder a batch:
        # a state re-sent after a newer one would leave the changelog's last
        # value stale (seen after a 75 s broker freeze: totals short).
        "enable.idempotence": True,
        # A Python callback per delivered message cost ~10% of the worker;
        # failures are all we need to hear about.
        "delivery.report.only.error": True,
        **librdkafka_config(settings),
    }


FLUSH_STEP_S = 5.0  # a flush that delivers nothing for this long means the broker is away
PROBE_TIMEOUT_S = 3.0


class Publisher:
    """Queues messages for Kafka and waits for their delivery on :meth:`flush`.

    ``outage_since``: monotonic time since when the broker has not answered
    (None while it does); :meth:`flush` and :meth:`probe` keep it, the
    metrics and readiness follow it.
    """

    def __init__(self, settings: Settings, metrics: Metrics, producer: Any = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.failed = 0
        self.last_error: str | None = None
        self.outage_since: float | None = None
        if producer is None:
            from confluent_kafka import Producer

            producer = Producer({**producer_config(settings), "on_delivery": self._on_delivery})
        # ``producer``: librdkafka's, or one with its produce/poll/flush/list_topics for in-process tests
        self._producer = producer

    def note_broker(self, answered: bool) -> None:
        """Record whether the broker answered; counts and logs the start and the end of an outage."""
        if answered and self.outage_since is not None:
            log.warning("the broker answers again after %.0f s; undelivered messages go out now",
                        time.monotonic() - self.outage_since)
            self.outage_since = None
            self.metrics.broker_unreachable.set(0)
        elif not answered and self.outage_since is None:
            self.outage_since = time.monotonic()
            self.metrics.broker_outages.inc()
            self.metrics.broker_unreachable.set(1)
            log.warning("the broker does not answer; the worker keeps its state and retries until it is back "
                        "(not ready meanwhile)")

    def probe(self) -> bool:
        """Ask the broker for metadata (blocking, at most a few seconds); True when it answered."""
        from confluent_kafka import KafkaException

        try:
            self._producer.list_topics(timeout=PROBE_TIMEOUT_S)
            ok = True
        except KafkaException:
            ok = False
        self.note_broker(ok)
        return ok

    def _on_delivery(self, err: object, msg: object) -> None:
        # Runs in the thread that serves delivery reports (flush).
        if err is not None:
            self.failed += 1
            self.last_error = str(err)

    def produce(self, topic: str, key: bytes | None, value: bytes, partition: int = -1) -> None:
        """Queue one message (``partition`` -1: by key)."""
        p = self._producer
        while True:
            try:
                p.produce(topic, value, key, partition)
                return
            except BufferError:  # local queue full: let deliveries drain
                p.poll(0.05)

    def produce_all(self, topic: str, items: Iterable[tuple[bytes | None, bytes]]) -> int:
        """Queue ``(key, value)`` messages; returns how many."""
        n = 0
        for key, value in items:
            self.produce(topic, key, value)
            n += 1
        self._producer.poll(0)
        return n

    async def flush(self, give_up_s: float | None = None) -> None:
        """Wait until everything queued so far is delivered, however long the broker is away.

        :class:`PublishError` when a message failed for good (a rejected
        message, a missing topic, no authorization), or, with ``give_up_s``,
        when messages are still undelivered after that many seconds.
        """
        loop = asyncio.get_running_loop()
        start = time.monotonic()
        while True:
            left = await loop.run_in_executor(None, self._producer.flush, FLUSH_STEP_S)
            if self.failed:
                failed, self.failed = self.failed, 0
                raise PublishError(f"{failed} messages failed (last error: {self.last_error})")
            if not left:
                self.note_broker(True)
                return
            self.note_broker(False)
            if give_up_s is not None and time.monotonic() - start >= give_up_s:
                raise PublishError(f"{left} messages are undelivered after {give_up_s:.0f} s; is the broker reachable?")

    def forecasts(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Queue encoded forecast messages, keyed by SKU."""
        self.metrics.forecasts.inc(self.produce_all(self.settings.topic_forecasts, items))

    def alerts(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Queue encoded stage-change alerts, keyed by SKU."""
        self.metrics.alerts.inc(self.produce_all(self.settings.topic_alerts, items))

    def samples(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Queue training-samples records (when the topic is set)."""
        if self.settings.topic_training_samples and items:
            self.metrics.training_samples.inc(self.produce_all(self.settings.topic_training_samples, items))

    def dead_letters(
        self, rejected: Sequence[Rejected], source_topics: Sequence[str], *, topic: str | None = None
    ) -> None:
        """Queue rejected records with their reason; ``topic`` overrides the source topic name."""
        now_ms = int(time.time() * 1000)
        items = ((r.key, dead_letter_value(r, topic or source_topics[r.kind], now_ms)) for r in rejected)
        self.metrics.dead_letters.inc(self.produce_all(self.settings.topic_dead_letters, items))
