"""/healthz, /readyz and /metrics on one port, from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from stream_app.worker.health import Health, serve
from stream_app.worker.metrics import Metrics


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def server():
    clock = Clock()
    health = Health(liveness_timeout_s=30, clock=clock)
    metrics = Metrics.create()
    metrics.ready.set(1)
    srv = serve("127.0.0.1", 0, metrics.registry, health)
    yield srv.server_port, health, clock
    srv.shutdown()
    srv.server_close()


def test_ready_needs_group_tables_and_model(server):
    port, health, _ = server
    status, body = get(port, "/readyz")
    assert status == 503
    assert json.loads(body) == {"ready": False, "joined": False, "recovered": False, "model_serving": False,
                                "broker_reachable": True, "forecaster": "baseline"}
    health.joined = health.model_serving = True
    assert get(port, "/readyz")[0] == 503
    health.recovered = True
    status, body = get(port, "/readyz")
    assert status == 200 and json.loads(body)["ready"] is True


def test_a_model_that_did_not_load_keeps_the_worker_unready(server):
    port, health, _ = server
    health.joined = health.recovered = True
    health.model_serving, health.forecaster = False, "baseline"  # TRENDCAST_FORECASTER=model, checkpoint damaged
    status, body = get(port, "/readyz")
    assert status == 503
    assert json.loads(body) == {"ready": False, "joined": True, "recovered": True, "model_serving": False,
                                "broker_reachable": True, "forecaster": "baseline"}
    health.model_serving, health.forecaster = True, "model"
    status, body = get(port, "/readyz")
    assert status == 200 and json.loads(body)["forecaster"] == "model"


def test_a_broker_that_does_not_answer_makes_the_worker_unready_but_live(server):
    port, health, _ = server
    health.joined = health.recovered = health.model_serving = True
    health.broker_reachable = False
    status, body = get(port, "/readyz")
    assert status == 503 and json.loads(body)["broker_reachable"] is False
    assert get(port, "/healthz")[0] == 200


def test_live_until_the_loop_stops_beating(server):
    port, health, clock = server
    assert get(port, "/healthz")[0] == 200  # start-up counts as a beat
    clock.t += 29
    assert get(port, "/healthz")[0] == 200
    clock.t += 2
    status, body = get(port, "/healthz")
    assert status == 503 and json.loads(body) == {"live": False, "seconds_since_beat": 31.0}
    health.beat()
    assert get(port, "/healthz")[0] == 200


def test_metrics_beside_health_and_nothing_else(server):
    port, _, _ = server
    status, body = get(port, "/metrics")
    assert status == 200 and b"trendcast_ready 1.0" in body
    assert get(port, "/")[0] == 404
