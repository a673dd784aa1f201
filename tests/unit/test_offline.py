"""Offline aggregation: event files -> daily per-SKU series, by the worker's rules; Kafka's partitioner."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np
import orjson
import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from stream_app.data.eventfiles import read_lines
from stream_app.data.offline import DailySeries, WorkerRules, aggregate, aggregate_files
from stream_app.core.partitioning import murmur2, partition_for
from stream_app.sim import Simulator, write_simulation
from stream_app.core.windows import DAY_MS

D = 20_000  # a day index (2024-10-04)
H = 3_600_000


def click(eid, sku, ts):
    return "clicks", orjson.dumps({"schema_version": 1, "event_id": eid, "sku": sku, "ts": ts})


def cart(eid, sku, ts, qty, action):
    return "carts", orjson.dumps({"schema_version": 1, "event_id": eid, "sku": sku, "ts": ts, "qty": qty,
                                  "action": action})


def order(eid, sku, ts, qty, price):
    return "orders", orjson.dumps({"schema_version": 1, "event_id": eid, "order_id": "o", "sku": sku, "ts": ts,
                                   "qty": qty, "unit_price": price})


def test_channels_days_and_revenue():
    lines = [
        click("c1", "a", D * DAY_MS), click("c2", "a", (D + 1) * DAY_MS - 1),  # both on day D
        click("c3", "a", (D + 1) * DAY_MS),  # midnight UTC starts day D+1
        cart("k1", "a", D * DAY_MS + H, 2, "add"), cart("k2", "a", D * DAY_MS + 2 * H, 1, "remove"),
        order("o1", "a", D * DAY_MS + 3 * H, 3, 2.5), order("o2", "a", D * DAY_MS + 4 * H, 1, 0.1),
        order("o3", "b", (D + 2) * DAY_MS, 2, 9.99),
        ("catalog", orjson.dumps({"sku": "a", "title": "t", "description": "", "category": "c"})),  # ignored
    ]
    s = aggregate(lines)
    assert s.skus == ("a", "b")
    # order lines: one per order event whatever its qty (a's 2 orders on day D sell 4 units)
    assert s.rows() == {("a", D): (2, 2, 1, 4, 3 * 2.5 + 0.1, 2), ("a", D + 1): (1, 0, 0, 0, 0.0, 0),
                        ("b", D + 2): (0, 0, 0, 2, 2 * 9.99, 1)}
    assert s.totals()["a"] == {"clicks": 3, "cart_adds": 2, "cart_removes": 1, "units": 4, "revenue": 7.6,
                               "order_lines": 2}
    dense = s.dense(D, D + 2)
    assert dense.shape == (2, 6, 3) and dense[0, :, 0].tolist() == [2, 2, 1, 4, 7.6, 2]
    assert dense[1, 3].tolist() == [0, 0, 2] and dense[1, 5].tolist() == [0, 0, 1] and s.dropped == {}


def test_invalid_and_duplicate_events_are_dropped_by_reason():
    lines = [
        order("o1", "a", D * DAY_MS, 1, 1.0), order("o1", "a", D * DAY_MS, 1, 1.0),  # a producer retry
        order("o2", "a", D * DAY_MS, 0, 1.0),  # bad_value
        ("orders", b'{"event_id": "x", "sku": "a", '),  # bad_json
        ("clicks", orjson.dumps({"schema_version": 1, "sku": "a", "ts": 1})),  # missing_field
        cart("k1", "a", D * DAY_MS, 1, "delete"),  # bad_value
    ]
    s = aggregate(lines)
    assert s.rows() == {("a", D): (0, 0, 0, 1, 1.0, 1)}
    assert s.dropped == {"duplicate": 1, "bad_value": 2, "bad_json": 1, "missing_field": 1}


def test_worker_rules_drop_late_and_future_events_per_partition():
    rules = WorkerRules(partitions=4, grace_ms=H, max_ahead_ms=3 * DAY_MS, future_confirm=3)
    # Two SKUs on different partitions: each partition has its own clocks.
    a, b = "sku-a", next(f"sku-{i}" for i in range(100) if partition_for(f"sku-{i}".encode(), 4)
                         != partition_for(b"sku-a", 4))
    t0 = D * DAY_MS + 12 * H
    lines = [
        click("c1", a, t0), click("c2", a, t0 - 2 * H),  # two hours behind, but day D is open: on time
        click("c3", b, t0 - 2 * H),  # another partition
        click("c8", a, t0 + DAY_MS),  # the clicks of a's partition close day D (its end + 1 h of grace)
        click("c9", a, t0 - 3 * H),  # late: day D is closed
        click("c4", a, t0 + 400 * DAY_MS),  # a bad clock...
        click("c5", a, t0 + DAY_MS + 1),  # ...refuted by the next click: future
        click("c6", a, t0 + 12 * DAY_MS), click("c7", a, t0 + 12 * DAY_MS + 1),  # a real jump: held...
        click("c10", a, t0 + 12 * DAY_MS + 2),  # ...until the third in a row confirms it; none lost
        order("o1", a, t0 + 12 * DAY_MS, 1, 1.0),  # the orders' first event: judged against the clicks
        click("c6", a, t0 + 12 * DAY_MS + 9),  # a retry of an applied event
    ]
    s = aggregate(lines, rules)
    assert s.dropped == {"late": 1, "future": 1, "duplicate": 1}
    assert s.rows() == {(a, D): (2, 0, 0, 0, 0.0, 0), (a, D + 1): (2, 0, 0, 0, 0.0, 0),
                        (a, D + 12): (3, 0, 0, 1, 1.0, 1), (b, D): (1, 0, 0, 0, 0.0, 0)}
    assert aggregate(lines).dropped == {"duplicate": 1}  # without rules, only the retry goes


def test_window_keeps_the_days_the_worker_holds():
    lines = [click(f"c{d}", "a", (D + d) * DAY_MS) for d in (0, 5, 60)] + [click("b0", "b", D * DAY_MS)]
    s = aggregate(lines)
    assert set(s.window(56).rows()) == {("a", D + 5), ("a", D + 60), ("b", D)}  # D is 60 days before a's newest
    assert s.newest_day().tolist() == [D + 60, D]


def test_files_and_envelopes(tmp_path):
    sim = Simulator(n_skus=15, days=6, start_ms=D * DAY_MS, seed=2)
    write_simulation(sim, tmp_path / "sim")
    s = aggregate_files(tmp_path / "sim")
    # The same events as one file of {"topic", "value"} lines give the same series.
    with open(tmp_path / "mixed.jsonl", "wb") as f:
        for kind, value in sim.events():
            f.write(orjson.dumps({"topic": kind, "value": value}) + b"\n")
    assert aggregate_files(tmp_path / "mixed.jsonl").rows() == s.rows()
    # And a plain group-by of the events agrees on every SKU and day.
    plain = defaultdict(lambda: [0, 0, 0, 0, 0.0, 0])
    for kind, v in sim.events():
        row = plain[v["sku"], v["ts"] // DAY_MS]
        if kind == "orders":
            row[3] += v["qty"]
            row[4] += v["qty"] * v["unit_price"]
            row[5] += 1
        elif kind == "carts":
            row[1 if v["action"] == "add" else 2] += v["qty"]
        else:
            row[0] += 1
    got = s.rows()
    assert set(got) == set(plain)
    for key, row in plain.items():
        assert got[key][:4] == tuple(row[:4]) and got[key][4] == pytest.approx(row[4], rel=1e-12)
        assert got[key][5] == row[5]
    kinds = {k for k, _ in read_lines(tmp_path / "sim" / "carts.jsonl")}
    assert kinds == {"carts"}


def test_empty_input():
    s = aggregate([])
    assert isinstance(s, DailySeries) and len(s) == 0 and s.totals() == {} and s.window(56).rows() == {}


def test_murmur2_is_kafkas():
    rng = random.Random(1)
    for _ in range(3000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        assert murmur2(data) == aiokafka_murmur2(data) & 0xFFFFFFFF
    parts = [partition_for(f"sku-{i}".encode(), 4) for i in range(4000)]
    assert set(parts) == {0, 1, 2, 3} and np.bincount(parts).min() > 900
