"""Liveness and readiness of a worker, served beside ``/metrics`` on the metrics port.

* ``GET /healthz``: 200 while the event loop is alive (a timer beats every
  second; no beat for ``liveness_timeout_s`` means the loop is stuck), else 503.
  Restart the process when it fails.
* ``GET /readyz``: 200 once the worker has joined the consumer group, its
  tables are recovered and the forecaster it was configured with serves;
  503 while it (re)starts or rebalances, or for as long as a model asked
  for (``TRENDCAST_FORECASTER=model``) did not load. Take it out of
  rotation, do not restart it. Also 503 while the broker does not answer
  (``broker_reachable``: a metadata probe every 5 s, or a flush that
  delivers nothing for 5 s): the worker keeps its state in memory and
  retries until the broker is back, and ``/healthz`` stays 200, so an
  outage of minutes restarts nothing. The body is JSON with each condition
  (``joined``, ``recovered``, ``model_serving``, ``broker_reachable``) and
  ``forecaster``, the kind that makes the forecasts: ``"model"`` or
  ``"baseline"``.
* ``GET /metrics``: the Prometheus exposition of the worker's registry.

``trendcast_ready`` follows ``/readyz``.

Why a model that did not load gates readiness although the worker goes on
forecasting with the baseline: readiness is what a rolling update waits
for. A new version whose checkpoint is damaged or missing should stop the
rollout while the old workers keep serving the model. The worker itself
still consumes and publishes (readiness takes nothing off Kafka), and
``TrendcastNotReady`` fires if it stays so for 10 minutes. ``model_serving``
is true with ``TRENDCAST_FORECASTER=baseline``: the forecaster asked for serves.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import orjson
from prometheus_client import CollectorRegistry, make_wsgi_app

# Faust warns after 10 s of a blocked loop; three times that is stuck, not slow.
LIVENESS_TIMEOUT_S = 30.0
BROKER_PROBE_S = 5.0


@dataclass
class Health:
    """What ``/healthz`` and ``/readyz`` answer; updated from the worker's event loop.

    ``clock`` returns seconds (monotonic); the process start counts as a beat,
    so a worker is live while it starts.
    """

    liveness_timeout_s: float = LIVENESS_TIMEOUT_S
    clock: Callable[[], float] = time.monotonic
    joined: bool = False
    recovered: bool = False
    model_serving: bool = False  # the configured forecaster serves (False: a model was asked for, none loaded)
    forecaster: str = "baseline"  # the kind that makes the forecasts: "model" or "baseline"
    broker_reachable: bool = True  # False while the broker does not answer (an outage is waited out)
    last_beat: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.last_beat = self.clock()

    def beat(self) -> None:
        """The event loop ran: record it."""
        self.last_beat = self.clock()

    def live(self) -> bool:
        """True unless the event loop has not beaten for ``liveness_timeout_s`` seconds."""
        return self.clock() - self.last_beat < self.liveness_timeout_s

    def conditions(self) -> dict[str, bool]:
        """Each readiness condition by name."""
        return {"joined": self.joined, "recovered": self.recovered, "model_serving": self.model_serving,
                "broker_reachable": self.broker_reachable}

    def ready(self) -> bool:
        """True when every readiness condition holds."""
        return all(self.conditions().values())


def wsgi_app(registry: CollectorRegistry, health: Health, mounts: Mapping[str, Callable] | None = None) -> Callable:
    """A WSGI app answering ``/metrics``, ``/healthz`` and ``/readyz``.

    ``mounts``: more WSGI apps by path prefix (e.g. ``/explore``), each called
    with the prefix moved from ``PATH_INFO`` to ``SCRIPT_NAME``.
    """
    metrics_app = make_wsgi_app(registry)
    mounts = dict(mounts or {})

    def reply(start_response: Callable, ok: bool, body: dict) -> list[bytes]:
        data = orjson.dumps(body)
        start_response("200 OK" if ok else "503 Service Unavailable",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def app(environ: dict, start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics_app(environ, start_response)
        for prefix, mounted in mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                return mounted({**environ, "SCRIPT_NAME": environ.get("SCRIPT_NAME", "") + prefix,
                                "PATH_INFO": path[len(prefix):] or "/"}, start_response)
        if path == "/healthz":
            live = health.live()
            return reply(start_response, live, {"live": live, "seconds_since_beat": round(
                health.clock() - health.last_beat, 3)})
        if path == "/readyz":
            ready = health.ready()
            return reply(start_response, ready, {"ready": ready, **health.conditions(),
                                                 "forecaster": health.forecaster})
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        more = "".join(f", {p}/" for p in mounts)
        return [f"not found: try /metrics, /healthz or /readyz{more}\n".encode()]

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # A scrape every few seconds is not worth a log line.
        pass


def http_server(host: str, port: int, app: Callable) -> WSGIServer:
    """A threaded WSGI server for ``app`` on ``host:port`` that logs no request (not started); OSError if taken."""
    return make_server(host, port, app, _ThreadingServer, handler_class=_QuietHandler)


def serve(host: str, port: int, registry: CollectorRegistry, health: Health,
          mounts: Mapping[str, Callable] | None = None) -> WSGIServer:
    """Serve the three endpoints (and ``mounts``) on ``host:port`` from a daemon thread; returns the server."""
    server = http_server(host, port, wsgi_app(registry, health, mounts))
    threading.Thread(target=server.serve_forever, name="trendcast-http", daemon=True).start()
    return server


def install(worker: Any, health: Health) -> None:
    """Keep ``health`` and ``trendcast_ready`` up to date from the worker's Faust app."""
    app, metrics = worker.app, worker.metrics
    health.model_serving, health.forecaster = worker.scorer.model_serving, worker.scorer.serving

    def publish() -> None:
        metrics.ready.set(1 if health.ready() else 0)

    @app.on_partitions_assigned.connect
    async def joined_group(sender: Any, assigned: set, **kwargs: Any) -> None:
        health.joined = True
        publish()

    @app.on_partitions_revoked.connect
    async def rebalancing(sender: Any, revoked: set, **kwargs: Any) -> None:
        health.recovered = False
        publish()

    # Faust sends this once tables are recovered and streams resume.
    @app.on_rebalance_complete.connect
    def tables_recovered(sender: Any, **kwargs: Any) -> None:
        health.joined = health.recovered = True
        publish()

    @app.timer(1.0)
    async def event_loop_beat() -> None:
        health.beat()

    publisher = worker.publisher

    @app.timer(BROKER_PROBE_S)
    async def probe_broker() -> None:
        # A metadata request off the loop: a broker that is away times it out in seconds,
        # while commits and fetches would only say so much later.
        await asyncio.get_running_loop().run_in_executor(None, publisher.probe)
        reachable = publisher.outage_since is None
        if reachable != health.broker_reachable:
            health.broker_reachable = reachable
            publish()
