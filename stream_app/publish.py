"""Publishing to the output topics: forecasts, stage alerts, dead letters.

Messages go through Faust's producer without waiting for each delivery;
Faust flushes the producer before it commits source offsets, so an output is
never lost behind a committed input (at-least-once).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from stream_app.ingest import Rejected
from stream_app.metrics import Metrics
from stream_app.settings import Settings

SCHEMA_VERSION = 1


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


class Publisher:
    """Sends encoded messages to trendcast's output topics."""

    def __init__(self, app: Any, settings: Settings, metrics: Metrics) -> None:
        self.app = app
        self.settings = settings
        self.metrics = metrics

    async def _send_all(self, topic: str, items: Iterable[tuple[bytes | None, bytes]]) -> int:
        send = self.app.producer.send
        n = 0
        for key, value in items:
            await send(topic, key, value, None, None, None)
            n += 1
        return n

    async def forecasts(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Publish encoded forecast messages, keyed by SKU."""
        if items:
            await self._send_all(self.settings.topic_forecasts, items)

    async def alerts(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Publish encoded stage-change alerts, keyed by SKU."""
        if items:
            await self._send_all(self.settings.topic_alerts, items)

    async def dead_letters(
        self, rejected: Sequence[Rejected], source_topics: Sequence[str], *, topic: str | None = None
    ) -> None:
        """Publish rejected records with their reason; ``topic`` overrides the source topic name."""
        now_ms = int(time.time() * 1000)
        items = (
            (r.key, dead_letter_value(r, topic or source_topics[r.kind], now_ms)) for r in rejected
        )
        n = await self._send_all(self.settings.topic_dead_letters, items)
        self.metrics.dead_letters.inc(n)
