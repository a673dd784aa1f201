"""The explorer's edge: a consumer thread that follows the topics, and the WSGI app that serves the page.

The consumer belongs to no group and commits nothing: it reads the
forecasts, stage-alerts and catalog topics from their first offset and then
follows them, so every explorer (the CLI's, or each worker's with
``TRENDCAST_EXPLORER=true``) sees all partitions and disturbs no worker's
consumer group. All it knows lives in memory and is rebuilt from Kafka at
start.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from stream_app.explorer import page
from stream_app.explorer.view import HORIZONS, Explorer
from stream_app.settings import Settings

log = logging.getLogger(__name__)
RETRY_S = 5.0


def topics_of(settings: Settings) -> dict[str, str]:
    """Record kind -> the topic it is read from."""
    return {"forecasts": settings.topic_forecasts, "alerts": settings.topic_alerts, "catalog": settings.topic_catalog}


class Feed:
    """Follows the topics from a daemon thread and folds each record into ``explorer`` under ``lock``."""

    def __init__(self, settings: Settings, explorer: Explorer | None = None) -> None:
        self.settings = settings
        self.explorer = explorer or Explorer(keep_days=settings.explorer_days)
        self.lock = threading.Lock()
        self.topics = topics_of(settings)

    def start(self) -> "Feed":
        """Start following (returns at once)."""
        threading.Thread(target=asyncio.run, args=(self._follow_all(),), name="trendcast-explorer-feed",
                         daemon=True).start()
        return self

    async def _follow_all(self) -> None:
        await asyncio.gather(*(self._follow(kind, topic) for kind, topic in self.topics.items()))

    async def _follow(self, kind: str, topic: str) -> None:
        from stream_app.worker.kafka_io import KafkaUnavailable, tail
        from stream_app.worker.security import aiokafka_kwargs

        while True:
            try:
                async for _key, value, _partition, _offset in tail(
                        self.settings.bootstrap, topic, from_beginning=True, client=aiokafka_kwargs(self.settings)):
                    with self.lock:
                        self.explorer.add(kind, value)
            except KafkaUnavailable as exc:
                # Read again from the start once the broker answers: repeats fold to the same view.
                log.warning("explorer: %s; retrying in %.0f s", exc, RETRY_S)
                await asyncio.sleep(RETRY_S)


def wsgi_app(feed: Feed) -> Callable:
    """The page as a WSGI app: ``/`` (latest alerts), ``/?sku=...&h=7`` (one SKU). Mountable under a prefix."""

    def app(environ: dict, start_response: Callable) -> Any:
        base = environ.get("SCRIPT_NAME", "").rstrip("/")
        if environ.get("PATH_INFO", "/") not in ("", "/"):
            return _reply(start_response, "404 Not Found", f"not found: the explorer is at {base}/\n", "text/plain")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        sku = query.get("sku", [""])[0].strip()
        h = query.get("h", ["7"])[0]
        horizon = int(h) if h.isdigit() and int(h) in HORIZONS else 7
        ex = feed.explorer
        with feed.lock:  # the views are built under the lock; rendering them is not
            status = page.status_line(ex.counts, len(ex.forecasts), list(feed.topics.values()))
            view = ex.sku(sku) if sku else None
            alerts = ex.latest_alerts() if not sku else []
            suggestions = ex.search(sku) if sku and view is None else []
        if not sku:
            return _reply(start_response, "200 OK", page.front_page(alerts, base=base, status=status))
        if view is None:
            return _reply(start_response, "404 Not Found", page.not_found_page(
                sku, suggestions, base=base, status=status, topic=feed.topics["forecasts"]))
        return _reply(start_response, "200 OK", page.sku_page(view, base=base, horizon=horizon, status=status))

    return app


def _reply(start_response: Callable, code: str, text: str, kind: str = "text/html") -> list[bytes]:
    data = text.encode("utf-8")
    start_response(code, [("Content-Type", f"{kind}; charset=utf-8"), ("Content-Length", str(len(data))),
                          ("Cache-Control", "no-store")])
    return [data]
