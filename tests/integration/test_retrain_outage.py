"""``trendcast retrain --every`` outlives a broker outage: it waits, then goes on with its schedule.

The broker process is frozen (SIGSTOP) for 20 s and thawed (SIGCONT), as a
hung broker or a dropped network looks to a client. The job keeps running
through it, and after it prints a cycle's JSON line again. Its own broker:
freezing the shared one would stall every other test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from kafka_helpers import wait_for

from stream_app.worker.broker import EmbeddedBroker

pytestmark = pytest.mark.integration


def test_a_scheduled_retrain_rides_out_a_broker_outage():
    with EmbeddedBroker() as broker:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRENDCAST_")}
        env.update(TRENDCAST_BROKER=broker.url, TRENDCAST_APP_ID="retrain-outage", TRENDCAST_WEB_PORT="0")
        proc = subprocess.Popen([sys.executable, "-m", "stream_app.cli", "retrain", "--every", "0.05m"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        cycles: list[tuple[float, dict]] = []  # (monotonic time, the cycle's summary)

        def read() -> None:
            for line in proc.stdout:
                cycles.append((time.monotonic(), json.loads(line)))

        threading.Thread(target=read, daemon=True).start()
        try:
            wait_for(lambda: len(cycles) >= 2, 60, "two scheduled cycles")
            os.kill(broker.pid, signal.SIGSTOP)
            try:
                time.sleep(20)
                assert proc.poll() is None, "the job exited during the outage"
            finally:
                os.kill(broker.pid, signal.SIGCONT)
            thawed = time.monotonic()
            wait_for(lambda: sum(t > thawed for t, _ in cycles) >= 2, 60, "two cycles after the outage")
            assert proc.poll() is None
            # nothing was published to learn from: each cycle says so and promotes nothing
            assert all(c["promoted"] is None and c["samples"] == 0 for _, c in cycles)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
