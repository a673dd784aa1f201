"""Parity: what the worker holds equals the offline aggregation of the same event files, exactly.

Two sources go through a real worker on the embedded broker: a slice of the
real UCI Online Retail data (tests/data, 55 days across the shop's
Christmas closure) and a small simulator run. The events are written to
event files first; an independent aiokafka producer sends those files'
events, each topic in file order. Then, per SKU and UTC day:

* the worker's windows (read back from the ``sku-windows-v4`` changelog) equal
  ``offline.aggregate_files(files, WorkerRules(...)).window(ring_days)``
  bucket by bucket, every channel (order lines included), revenue to the
  last bit;
* a plain group-by over the files' JSON lines, written here and sharing no
  code with the worker or the offline module, equals the worker's totals
  plus the events the worker dead-lettered: nothing lost, nothing counted twice.

The UCI slice crosses a 12-day gap (23 Dec - 4 Jan), longer than the
worker's default ``max_ahead_s``: the first events after it on each
partition wait until enough of them confirm the jump, and none is lost.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from kafka_helpers import produce, read_topic, wait_for

from stream_app.cli.datacli import worker_rules
from stream_app.data.eventfiles import TopicFiles, event_files, merged, read_lines
from stream_app.data.offline import aggregate_files
from stream_app.data.replay import UciOnlineRetail
from stream_app.sim import Simulator, write_simulation
from stream_app.core.windows import CHANNELS, DAY_MS, H_HEAD_DAY, NO_DAY, ORDER_LINES_ROW, WindowSpec

pytestmark = pytest.mark.integration

SAMPLE = Path(__file__).parents[1] / "data" / "uci_online_retail_sample.csv.gz"


def uci_files(folder: Path) -> Path:
    with TopicFiles(folder) as files:
        files.write_all(UciOnlineRetail(SAMPLE).rows())
    return folder


def sim_files(folder: Path) -> Path:
    write_simulation(Simulator(n_skus=40, days=30, start_ms=20_000 * DAY_MS, seed=11), folder)
    return folder


def held_buckets(run) -> dict[tuple[str, int], tuple]:
    """``{(sku, day): (clicks, adds, removes, units, revenue, order lines)}`` of every non-empty bucket the worker holds."""
    spec = WindowSpec(run.settings.history_days, run.settings.dedup_ids_per_sku)
    latest = {m.key: m.value for m in read_topic(run.bootstrap, run.windows_changelog)}
    n = spec.ring_days
    out = {}
    for key, blob in latest.items():
        w = spec.load(blob)
        head = w.header[H_HEAD_DAY]
        if head == NO_DAY:
            continue  # only dead-lettered events so far: an empty state
        for day in range(head - n + 1, head + 1):
            slot = day % n
            bucket = (*(int(w.counts[ch * n + slot]) for ch in range(ORDER_LINES_ROW)), float(w.revenue[slot]),
                      int(w.counts[ORDER_LINES_ROW * n + slot]))
            if any(bucket):
                out[key.decode(), day] = bucket
    return out


def plain_totals(folder: Path) -> dict[str, list]:
    """Per SKU [clicks, cart adds, cart removes, units, revenue, order lines] straight from the JSON lines."""
    totals: dict[str, list] = defaultdict(lambda: [0, 0, 0, 0, 0.0, 0])
    for kind, raw in (x for p in event_files(folder).values() for x in read_lines(p)):
        e = orjson.loads(raw)
        t = totals[e.get("sku")]
        if kind == "clicks":
            t[0] += 1
        elif kind == "carts":
            t[1 if e["action"] == "add" else 2] += e["qty"]
        elif kind == "orders":
            t[3] += e["qty"]
            t[4] += e["qty"] * e["unit_price"]
            t[5] += 1
    return {sku: t for sku, t in totals.items() if any(t)}


@pytest.mark.parametrize("make_files", [uci_files, sim_files], ids=["uci-sample", "simulator"])
def test_worker_windows_equal_offline_aggregation(make_run, tmp_path, make_files):
    run = make_run()
    folder = make_files(tmp_path / "events")
    spec = WindowSpec(run.settings.history_days, run.settings.dedup_ids_per_sku)
    expected = aggregate_files(folder, worker_rules(run.settings)).window(spec.ring_days)
    want = expected.rows()
    assert want and "late" not in expected.dropped  # files in event-time order: nothing is late
    if make_files is uci_files:
        assert expected.dropped == {}  # the Christmas closure is a real jump: nothing is lost

    topic = {k: run.topic(k) for k in ("clicks", "carts", "orders", "catalog")}
    messages = [(topic[k], v["sku"].encode(), orjson.dumps(v)) for k, v in merged(event_files(folder).values())]
    run.start_worker()
    produce(run.bootstrap, messages)

    def diff() -> str:
        got = held_buckets(run)
        bad = [f"{k}: worker {got.get(k)} offline {want.get(k)}" for k in sorted(set(got) | set(want))
               if got.get(k) != want.get(k)]
        dead = [orjson.loads(r.value) for r in read_topic(run.bootstrap, run.topic("dead_letters"))]
        reasons = sorted({(d["source_topic"], d["reason"]["code"]) for d in dead})
        return "\n".join(bad[:10]) + f"\n({len(bad)} buckets differ)\n{len(dead)} dead letters {reasons}, e.g. " \
            f"{[d['reason'] for d in dead[:3]]}\n{run.logs()}"

    wait_for(lambda: held_buckets(run) == want, 90, "the worker's windows to equal the offline aggregation",
             on_fail=diff)

    # Independently: file totals = worker totals + what the worker dead-lettered, channel by channel.
    plain = plain_totals(folder)
    dead = [orjson.loads(r.value) for r in read_topic(run.bootstrap, run.topic("dead_letters"))]
    assert sorted({d["reason"]["code"] for d in dead}) == sorted(expected.dropped)
    assert len(dead) == sum(expected.dropped.values())
    for d in dead:
        e = orjson.loads(d["value_text"])
        kind = next(k for k, t in topic.items() if t == d["source_topic"])
        t = plain[e["sku"]]
        if kind == "orders":
            t[3] -= e["qty"]
            t[4] -= e["qty"] * e["unit_price"]
            t[5] -= 1
        else:
            t[0 if kind == "clicks" else 1 if e["action"] == "add" else 2] -= 1 if kind == "clicks" else e["qty"]
    held = defaultdict(lambda: [0, 0, 0, 0, 0.0, 0])
    for (sku, _), bucket in held_buckets(run).items():
        held[sku] = [a + b for a, b in zip(held[sku], bucket)]
    plain = {s: t for s, t in plain.items() if any(t[:4])}
    assert set(held) == set(plain)
    for sku, t in plain.items():
        assert held[sku][:4] == t[:4] and held[sku][5] == t[5], (sku, dict(zip(CHANNELS, held[sku])), t)
        assert math.isclose(held[sku][4], t[4], rel_tol=1e-9, abs_tol=1e-6), (sku, held[sku][4], t[4])
