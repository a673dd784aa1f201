"""More than one worker: joining, failing over, coming back, three workers on four partitions.

Kafka's consumer group moves partitions between workers; the state (windows,
learning) moves with them through the changelogs. Whatever the handovers:
per-SKU daily totals equal the produced ledger exactly, every SKU is
forecast at every closed day, two workers never publish the same SKU-day
with different numbers (a forecast delivered twice carries the same ``id``),
and a partition that moves keeps its calibration.
"""

from __future__ import annotations

import signal
import time
from collections import defaultdict

import numpy as np
import orjson
import pytest
from kafka_helpers import json_values, latest_windows, produce, read_topic, wait_for

pytestmark = pytest.mark.integration

DAY = 86_400_000
D0 = 20_400


def ledger(run, skus=120, days=24, seed=4):
    """Orders and clicks in event-time order, and each SKU's units and clicks."""
    rng = np.random.default_rng(seed)
    msgs, units, clicks = [], defaultdict(int), defaultdict(int)
    for day in range(days):
        events = []
        for s in range(skus):
            sku = f"S{s:03d}"
            for _ in range(rng.poisson(1.5)):
                events.append(("orders", sku, (D0 + day) * DAY + int(rng.integers(0, DAY))))
            for _ in range(rng.poisson(3)):
                events.append(("clicks", sku, (D0 + day) * DAY + int(rng.integers(0, DAY))))
        for i, (kind, sku, ts) in enumerate(sorted(events, key=lambda e: e[2])):
            v = {"schema_version": 1, "event_id": f"{kind}-{day}-{i}", "sku": sku, "ts": ts}
            if kind == "orders":
                v |= {"order_id": f"o{day}-{i}", "qty": int(rng.integers(1, 4)), "unit_price": 3.0}
                units[sku] += v["qty"]
            else:
                clicks[sku] += 1
            msgs.append((run.topic(kind), sku.encode(), orjson.dumps(v)))
    return msgs, dict(units), dict(clicks)


def check_published(run, units, clicks) -> list[dict]:
    """Totals exact; one set of numbers per SKU-day; every SKU forecast at every closed day since its first."""
    def complete():
        got = latest_windows(run)
        return got if ({s: t["units"] for s, t in got.items() if t["units"]} == units
                       and {s: t["clicks"] for s, t in got.items() if t["clicks"]} == clicks) else None

    wait_for(complete, 120, "per-SKU units and clicks to equal the ledger", on_fail=run.logs)
    forecasts = json_values(read_topic(run.bootstrap, run.topic("forecasts")))
    by_id = defaultdict(list)
    for f in forecasts:
        by_id[f["id"]].append(f)
    for fid, copies in by_id.items():
        first = copies[0]
        assert all(c == first for c in copies), f"{fid} published with different numbers: {copies}"
        assert fid == f"{first['sku']}/{first['as_of']}/{first['model']['name']}:{first['model']['version']}"
    days = defaultdict(set)
    for f in forecasts:
        days[f["sku"]].add(f["as_of"] // DAY - 1)
    last = max(max(d) for d in days.values())
    assert last >= D0 + 20
    for sku in units:
        first = min(days[sku])
        missing = sorted(set(range(first, last + 1)) - days[sku])
        assert not missing, f"{sku}: no forecast as of days {missing[:5]}..."
    return forecasts


def calibration_never_restarts(forecasts) -> None:
    """Once a partition's forecasts are calibrated, they stay calibrated across handovers."""
    from stream_app.core.partitioning import partition_for

    calibrated_from: dict[int, int] = {}
    for f in sorted(forecasts, key=lambda f: f["as_of"]):
        p = partition_for(f["sku"].encode(), 4)
        if f["calibrated"]:
            calibrated_from.setdefault(p, f["as_of"])
        elif p in calibrated_from:
            pytest.fail(f"partition {p}: uncalibrated forecast as of {f['as_of']} after calibrated ones "
                        f"from {calibrated_from[p]}: its calibration did not move with it")
    assert len(calibrated_from) == 4


def test_a_second_worker_joins_the_first_dies_and_comes_back(make_run):
    run = make_run(forecaster="baseline", commit_interval_s=1.0)
    msgs, units, clicks = ledger(run)
    a, b, c = len(msgs) // 3, 2 * len(msgs) // 3, len(msgs)
    first = run.start_worker()
    first.wait(lambda m: m.get("trendcast_ready", 0) == 1, 60)
    produce(run.bootstrap, msgs[:a])
    first.wait(lambda m: m.get("trendcast_events_consumed_total", 0) >= a * 0.9, 60)

    second = run.start_worker()
    seen_not_ready = False
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # readiness waits for the assigned tables to be recovered
        m = second.metrics()
        if m and m.get("trendcast_ready", 0) == 0:
            seen_not_ready = True
        if m.get("trendcast_ready", 0) == 1:
            assert m.get("trendcast_skus_tracked", 0) > 0, "ready before its partitions' windows were recovered"
            break
        time.sleep(0.2)
    else:
        pytest.fail("the second worker never became ready\n" + run.logs())
    assert seen_not_ready
    produce(run.bootstrap, msgs[a:b])
    second.wait(lambda m: m.get("trendcast_events_consumed_total", 0) > 0, 60)

    first.stop(signal.SIGKILL)
    produce(run.bootstrap, msgs[b:c])
    run.start_worker()  # the first one, back
    forecasts = check_published(run, units, clicks)
    calibration_never_restarts(forecasts)


def test_three_workers_share_four_partitions(make_run):
    run = make_run(forecaster="baseline", commit_interval_s=1.0)
    msgs, units, clicks = ledger(run, seed=9)
    workers = [run.start_worker() for _ in range(3)]
    for w in workers:
        w.wait(lambda m: m.get("trendcast_ready", 0) == 1, 90)
    produce(run.bootstrap, msgs)
    check_published(run, units, clicks)
    consumed = [w.metrics().get("trendcast_events_consumed_total", 0) for w in workers]
    assert sum(1 for n in consumed if n > 0) == 3, f"events consumed per worker: {consumed}"
