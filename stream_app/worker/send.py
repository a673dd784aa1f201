"""Send a stream of ``(topic kind, event)`` to Kafka keyed by SKU, paced by event time (an edge)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

import orjson

from stream_app.worker.kafka_io import Producer
from stream_app.settings import Settings


def topic_names(settings: Settings) -> dict[str, str]:
    """Topic kind (``clicks``, ``carts``, ``orders``, ``catalog``) -> the topic name ``settings`` give it."""
    return {"clicks": settings.topic_clicks, "carts": settings.topic_carts, "orders": settings.topic_orders,
            "catalog": settings.topic_catalog}


class Pacer:
    """Keeps sending in step with event time: ``speedup`` event-time seconds per wall-clock second.

    The first event time seen is matched to the wall clock at that moment;
    later events are due when as much scaled wall time has passed.
    """

    def __init__(self, speedup: float) -> None:
        self.speedup = speedup
        self._origin: tuple[float, int] | None = None

    def wait_s(self, ts: int) -> float:
        """Seconds to wait before an event at ``ts`` (epoch ms) is due; 0 when it is due now."""
        now = time.monotonic()
        if self._origin is None:
            self._origin = (now, ts)
        wall0, ts0 = self._origin
        return max(0.0, (ts - ts0) / 1000.0 / self.speedup - (now - wall0))


async def send_events(bootstrap: str, items: Iterable[tuple[str, dict]], topics: Mapping[str, str], *,
                      speedup: float | None = None,
                      on_sent: Callable[[str, dict], None] | None = None,
                      client: Mapping | None = None) -> Counter:
    """Send every ``(kind, event)`` to ``topics[kind]`` with the event's ``sku`` as key; returns sent per kind.

    With ``speedup``, sending keeps pace with event time (:class:`Pacer`);
    event times themselves are never changed. Records without ``ts``
    (catalog) go out at once. ``on_sent(kind, event)`` is called after each
    send is queued. ``client``: extra aiokafka arguments (security).
    """
    counts: Counter = Counter()
    pacer = Pacer(speedup) if speedup else None
    async with Producer(bootstrap, **(client or {})) as p:
        for kind, value in items:
            ts = value.get("ts")
            wait = pacer.wait_s(ts) if pacer is not None and isinstance(ts, int) else 0.0
            if wait > 0.005:
                await p.flush()  # what is due now goes out before we sleep
                await asyncio.sleep(wait)
            await p.send(topics[kind], orjson.dumps(value), value["sku"].encode())
            counts[kind] += 1
            if on_sent is not None:
                on_sent(kind, value)
    return counts
