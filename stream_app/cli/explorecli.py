"""``trendcast explore``: the forecast explorer on its own port, reading the topics of TRENDCAST_BROKER."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from stream_app.requests import BadRequest
from stream_app.settings import Settings


def run_explore(settings: Settings, host: str, port: int, echo: Callable[[str], None]) -> None:
    """Check the broker, start following the topics and serve the page until Ctrl-C (blocks)."""
    from stream_app.explorer.server import Feed, topics_of, wsgi_app
    from stream_app.worker.broker import wait_until_answers
    from stream_app.worker.health import http_server
    from stream_app.worker.security import aiokafka_kwargs

    asyncio.run(wait_until_answers(settings.bootstrap, settings.connect_timeout_s, client=aiokafka_kwargs(settings)))
    feed = Feed(settings)
    try:
        server = http_server(host, port, wsgi_app(feed))
    except OSError as exc:
        raise BadRequest(f"cannot serve on {host}:{port} ({exc.strerror}); choose another --port") from None
    feed.start()
    echo(f"explorer on http://{host}:{server.server_port}/ reading {', '.join(topics_of(settings).values())} "
         f"from {settings.bootstrap} (Ctrl-C stops it)")
    with contextlib.suppress(KeyboardInterrupt), server:
        server.serve_forever()
