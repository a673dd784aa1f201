"""The broker goes away for minutes mid-stream: the worker waits it out and loses nothing.

The broker process is frozen (SIGSTOP) and thawed (SIGCONT), as a broker
that hangs or a network that drops packets looks to its clients. Meanwhile
``/healthz`` answers 200 (nothing to restart), ``/readyz`` 503 with
``broker_reachable: false``, and the outage is counted; afterwards the
per-SKU totals equal the produced ledger exactly. Each test runs its own
broker: freezing the shared one would stall every other test.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request

import pytest
from kafka_helpers import Run, latest_windows, produce, wait_for
from test_crash_recovery import ledger_events

from stream_app.worker.broker import EmbeddedBroker

pytestmark = pytest.mark.integration


def _get(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize("pause_s", [30, 120])
def test_the_worker_rides_out_a_broker_outage(tmp_path, pause_s):
    with EmbeddedBroker() as broker:
        run = Run(broker, tmp_path, forecaster="baseline", commit_interval_s=1.0)
        try:
            msgs, units = ledger_events(run, n=20_000, skus=200, days=3)
            half = len(msgs) // 2
            worker = run.start_worker()
            worker.wait(lambda m: m.get("trendcast_ready", 0) == 1, 60)
            produce(run.bootstrap, msgs[:half])
            worker.wait(lambda m: m.get("trendcast_events_consumed_total", 0) >= half, 60)

            os.kill(broker.pid, signal.SIGSTOP)
            stopped, unready = time.monotonic(), False
            try:
                while time.monotonic() - stopped < pause_s:
                    assert _get(worker.port, "/healthz")[0] == 200, "the worker must stay live"
                    status, body = _get(worker.port, "/readyz")
                    unready |= status == 503 and body["broker_reachable"] is False
                    assert worker.proc.poll() is None, "the worker exited during the outage\n" + run.logs()
                    time.sleep(1.0)
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            assert unready, "readiness never said the broker was away"

            produce(run.bootstrap, msgs[half:])

            def complete():
                got = latest_windows(run)
                return got if {s: t["units"] for s, t in got.items()} == dict(units) else None

            wait_for(complete, 180, "per-SKU units to equal the ledger after the outage", on_fail=run.logs)
            m = worker.wait(lambda m: m.get("trendcast_ready", 0) == 1, 120)[1]
            assert m["trendcast_broker_outages_total"] >= 1 and m["trendcast_broker_unreachable"] == 0
            assert worker.proc.poll() is None
        finally:
            run.stop()
