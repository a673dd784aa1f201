"""``trendcast replay`` and ``trendcast simulate --kafka`` send to a real broker, keyed by SKU, paced by event time."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from kafka_helpers import read_topic

from stream_app.data.replay import UciOnlineRetail
from stream_app.sim import Simulator
from stream_app.core.windows import DAY_MS

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).parents[1] / "data" / "uci_online_retail_sample.csv.gz"


def cli(run, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stream_app.cli", *args], env=run.env, capture_output=True,
                          text=True, timeout=120)


def test_replay_sends_the_adapters_events(make_run):
    run = make_run()
    r = cli(run, "replay", str(SAMPLE), "--until", "2010-12-08")
    assert r.returncode == 0, r.stderr
    want = [(k, v) for k, v in UciOnlineRetail(SAMPLE, until_ms=1291766400000).rows()]  # 2010-12-08 00:00 UTC
    n = Counter(k for k, _ in want)
    assert r.stdout.splitlines()[0] == f"sent to {run.settings.broker}: orders={n['orders']:,} catalog={n['catalog']}"
    got = read_topic(run.bootstrap, run.topic("orders"))
    assert sorted(orjson.loads(m.value)["event_id"] for m in got) == sorted(v["event_id"] for k, v in want
                                                                            if k == "orders")
    assert all(m.key.decode() == orjson.loads(m.value)["sku"] for m in got)
    assert len(read_topic(run.bootstrap, run.topic("catalog"))) == n["catalog"]
    assert read_topic(run.bootstrap, run.topic("clicks"), idle_s=0.5) == []  # nothing invented


def test_simulate_to_kafka_keeps_pace_with_event_time(make_run):
    run = make_run()
    t0 = time.monotonic()
    # Two simulated days at 86,400 x: about two seconds of sending.
    r = cli(run, "simulate", "--kafka", "--skus", "6", "--days", "2", "--start", "2024-10-04", "--speedup", "86400")
    assert r.returncode == 0, r.stderr
    sim = Simulator(6, 2, 20_000 * DAY_MS, 7)
    n = Counter(k for k, _ in sim.events())
    assert f"clicks={n['clicks']:,} carts={n['carts']:,} orders={n['orders']:,} catalog=6" in r.stdout
    assert time.monotonic() - t0 > 1.5
    clicks = [orjson.loads(m.value) for m in read_topic(run.bootstrap, run.topic("clicks"))]
    assert sorted(c["event_id"] for c in clicks) == sorted(v["event_id"] for k, v in sim.events() if k == "clicks")
