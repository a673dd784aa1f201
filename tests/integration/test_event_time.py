"""Event time on streams nobody here wrote: shuffled days, quiet topics, bad clocks, backlogs.

* Lateness belongs to a day's bucket: events shuffled within their day (by
  up to 23 h) and across midnight within the grace period are all applied,
  and the forecasts equal those of the same stream in order. An event whose
  day was already forecast is dead-lettered as ``late``, once.
* A small catalogue whose orders go quiet for days loses no order, while a
  producer whose clock is 400 days ahead is still caught (``future``).
* A replay at any speed publishes the same forecasts: the same events sent
  slowly to a running worker and all at once into a backlog give identical
  forecast messages, ids and numbers.
"""

from __future__ import annotations

import signal
import time
from collections import defaultdict

import numpy as np
import orjson
import pytest
from kafka_helpers import json_values, latest_windows, produce, read_topic, wait_for

from stream_app.sim import Simulator
from stream_app.core.windows import WindowSpec

pytestmark = pytest.mark.integration

DAY = 86_400_000
H = 3_600_000
MINUTE = 60_000
D0 = 20_500


def day_events(rng, skus=40, days=30):
    """Per topic, per day, the events of that day (event time order), and the per-SKU ledger."""
    by = {"clicks": defaultdict(list), "orders": defaultdict(list)}
    units, clicks = defaultdict(int), defaultdict(int)
    n = 0
    for d in range(days):
        for s in range(skus):
            sku = f"E{s:02d}"
            for _ in range(rng.poisson(4)):
                by["clicks"][d].append({"schema_version": 1, "event_id": f"c{n}", "sku": sku,
                                        "ts": (D0 + d) * DAY + int(rng.integers(0, DAY))})
                clicks[sku] += 1
                n += 1
            for _ in range(rng.poisson(1.2)):
                qty = int(rng.integers(1, 4))
                by["orders"][d].append({"schema_version": 1, "event_id": f"o{n}", "order_id": f"x{n}", "sku": sku,
                                        "ts": (D0 + d) * DAY + int(rng.integers(0, DAY)), "qty": qty,
                                        "unit_price": 2.0})
                units[sku] += qty
                n += 1
    return by, dict(units), dict(clicks)


def in_order(by) -> dict[str, list]:
    return {k: sorted((e for d in sorted(days) for e in days[d]), key=lambda e: e["ts"]) for k, days in by.items()}


def shuffled(by, rng) -> dict[str, list]:
    """Each day's events in random order; the last half hour's stragglers arrive among the next day's first half hour."""
    out = {}
    for kind, days in by.items():
        seq, carry = [], []
        for d in sorted(days):
            start = (D0 + d) * DAY
            early = [e for e in days[d] if e["ts"] < start + 30 * MINUTE]
            late = [e for e in days[d] if e["ts"] >= start + DAY - 30 * MINUTE]
            rest = [e for e in days[d] if start + 30 * MINUTE <= e["ts"] < start + DAY - 30 * MINUTE]
            head = early + carry  # yesterday's stragglers among today's first half hour: within the 1 h grace
            rng.shuffle(head)
            body = rest + (late if d == max(days) else [])
            rng.shuffle(body)
            seq += head + body
            carry = late if d != max(days) else []
        out[kind] = seq
    return out


def messages(run, streams) -> list:
    """Send order interleaving the topics by position (each topic keeps its own arrival order)."""
    out = []
    lists = {k: list(v) for k, v in streams.items()}
    total = sum(len(v) for v in lists.values())
    idx = {k: 0 for k in lists}
    for i in range(total):
        for k, v in lists.items():
            if idx[k] < len(v) and idx[k] * total <= i * len(v):
                e = v[idx[k]]
                out.append((run.topic(k), e["sku"].encode(), orjson.dumps(e)))
                idx[k] += 1
    for k, v in lists.items():
        out += [(run.topic(k), e["sku"].encode(), orjson.dumps(e)) for e in v[idx[k]:]]
    return out


def closer(run, day):
    """A click and an order on every partition's SKUs far enough ahead to close ``day`` everywhere."""
    out = []
    for s in range(40):
        sku = f"E{s:02d}"
        ts = (D0 + day + 1) * DAY + 2 * H
        out.append((run.topic("clicks"), sku.encode(),
                    orjson.dumps({"schema_version": 1, "event_id": f"zc{s}", "sku": sku, "ts": ts})))
        out.append((run.topic("orders"), sku.encode(), orjson.dumps(
            {"schema_version": 1, "event_id": f"zo{s}", "order_id": f"z{s}", "sku": sku, "ts": ts, "qty": 1,
             "unit_price": 2.0})))
    return out


def forecasts_by_key(run) -> dict[tuple[str, int], dict]:
    return {(f["sku"], f["as_of"]): f for f in json_values(read_topic(run.bootstrap, run.topic("forecasts")))}


def check_observed(forecasts: dict, by) -> None:
    """Every forecast's ``observed`` equals the units and clicks sent for its SKU's last 1, 7 and 28 days."""
    units, clicks = defaultdict(int), defaultdict(int)
    for d, events in by["orders"].items():
        for e in events:
            units[e["sku"], D0 + d] += e["qty"]
    for d, events in by["clicks"].items():
        for e in events:
            clicks[e["sku"], D0 + d] += 1
    checked = 0
    for (sku, as_of), f in forecasts.items():
        day = as_of // DAY - 1
        if day > D0 + 19:
            continue  # the closer events of day D0 + 22 are not in the ledger
        want = {"units_1d": units[sku, day], "units_7d": sum(units[sku, day - i] for i in range(7)),
                "units_28d": sum(units[sku, day - i] for i in range(28)),
                "clicks_7d": sum(clicks[sku, day - i] for i in range(7))}
        assert f["observed"] == want, (sku, day, f["observed"], want)
        checked += 1
    assert checked > 500


def wait_totals(run, units, clicks, timeout=120):
    def complete():
        got = latest_windows(run)
        return got if ({s: t["units"] for s, t in got.items() if t["units"]} == units
                       and {s: t["clicks"] for s, t in got.items() if t["clicks"]} == clicks) else None

    wait_for(complete, timeout, "per-SKU units and clicks to equal the ledger", on_fail=run.logs)


def test_events_shuffled_within_their_day_are_all_applied_and_forecast_as_in_order(make_run):
    rng = np.random.default_rng(21)
    by, units, clicks = day_events(rng, days=20)
    for s in range(40):  # the closer events count too
        units[f"E{s:02d}"] = units.get(f"E{s:02d}", 0) + 1
        clicks[f"E{s:02d}"] = clicks.get(f"E{s:02d}", 0) + 1
    runs, workers = {}, {}
    for name, streams in (("ordered", in_order(by)), ("shuffled", shuffled(by, rng))):
        # A commit interval longer than the test: the restart below re-reads the whole stream.
        run = runs[name] = make_run(forecaster="baseline", commit_interval_s=600.0)
        w = workers[name] = run.start_worker()
        w.wait(lambda m: m.get("trendcast_ready", 0) == 1, 60)
        produce(run.bootstrap, messages(run, streams) + closer(run, 21))
        wait_totals(run, units, clicks)
    shuffled_run = runs["shuffled"]
    assert read_topic(shuffled_run.bootstrap, shuffled_run.topic("dead_letters")) == []

    def same_forecasts():
        a, b = forecasts_by_key(runs["ordered"]), forecasts_by_key(shuffled_run)
        days = {k for k in a if k[1] // DAY - 1 <= D0 + 19}
        return days and days == {k for k in b if k[1] // DAY - 1 <= D0 + 19} and all(a[k] == b[k] for k in days)

    wait_for(same_forecasts, 60, "the shuffled stream's forecasts to equal the ordered stream's")
    check_observed(forecasts_by_key(shuffled_run), by)
    # A truly late order: its day was forecast long ago. Dead-lettered as late, and only once, also when
    # a restart delivers it again.
    late = {"schema_version": 1, "event_id": "late-1", "order_id": "L", "sku": "E01", "ts": (D0 + 3) * DAY + H,
            "qty": 5, "unit_price": 2.0}
    produce(shuffled_run.bootstrap, [(shuffled_run.topic("orders"), b"E01", orjson.dumps(late))])
    wait_for(lambda: read_topic(shuffled_run.bootstrap, shuffled_run.topic("dead_letters")), 30,
             "the late order in the dead letters")
    time.sleep(3 * shuffled_run.settings.flush_interval_s)
    workers["shuffled"].stop(signal.SIGKILL)
    again = shuffled_run.start_worker()
    again.wait(lambda m: m.get("trendcast_events_redelivered_total", 0) >= 1000, 90)  # the stream, read again
    wait_totals(shuffled_run, units, clicks)
    dead = json_values(read_topic(shuffled_run.bootstrap, shuffled_run.topic("dead_letters")))
    assert [(d["reason"]["code"], orjson.loads(d["value_text"])["event_id"]) for d in dead] == [("late", "late-1")]


def test_a_quiet_topic_on_a_small_catalogue_loses_no_order_and_a_bad_clock_is_still_caught(make_run):
    run = make_run(forecaster="baseline")
    sim = Simulator(n_skus=30, days=120, start_ms=20_000 * DAY, seed=7)
    msgs, daily, newest = [], defaultdict(int), defaultdict(int)
    for kind, v in sim.events():
        if kind == "catalog":
            continue
        msgs.append((run.topic(kind), v["sku"].encode(), orjson.dumps(v)))
        day = v["ts"] // DAY
        newest[v["sku"]] = max(newest[v["sku"]], day)
        if kind == "orders":
            daily[v["sku"], day] += v["qty"]
    ring = WindowSpec(run.settings.history_days).ring_days  # the days a window holds before its newest
    units = defaultdict(int)
    for (sku, day), qty in daily.items():
        if day > newest[sku] - ring:
            units[sku] += qty
    # Halfway: one order from a producer whose clock is 400 days ahead.
    bad_sku = msgs[len(msgs) // 2][1].decode()
    bad_ts = orjson.loads(msgs[len(msgs) // 2][2])["ts"] + 400 * DAY
    bad = {"schema_version": 1, "event_id": "bad-clock", "order_id": "B", "sku": bad_sku, "ts": bad_ts, "qty": 7,
           "unit_price": 1.0}
    msgs.insert(len(msgs) // 2, (run.topic("orders"), bad_sku.encode(), orjson.dumps(bad)))
    w = run.start_worker()
    w.wait(lambda m: m.get("trendcast_ready", 0) == 1, 60)
    produce(run.bootstrap, msgs)

    def complete():
        got = {s: t["units"] for s, t in latest_windows(run).items() if t["units"]}
        return got if got == dict(units) else None

    wait_for(complete, 150, "every order of the small catalogue in the windows", on_fail=run.logs)
    dead = json_values(read_topic(run.bootstrap, run.topic("dead_letters")))
    assert [(d["reason"]["code"], orjson.loads(d["value_text"])["event_id"]) for d in dead] == [
        ("future", "bad-clock")]


def test_a_replay_slow_or_into_a_backlog_publishes_the_same_forecasts(make_run):
    sim = Simulator(n_skus=40, days=30, start_ms=20_200 * DAY, seed=11)
    events = [(k, v) for k, v in sim.events() if k != "catalog"]
    last_day = max(v["ts"] for _, v in events) // DAY
    runs = {}
    for mode in ("slow", "backlog"):
        run = runs[mode] = make_run(forecaster="baseline")
        msgs = [(run.topic(k), v["sku"].encode(), orjson.dumps(v)) for k, v in events]
        if mode == "backlog":
            produce(run.bootstrap, msgs)
            run.start_worker()
        else:
            w = run.start_worker()
            w.wait(lambda m: m.get("trendcast_ready", 0) == 1, 60)
            days = defaultdict(list)
            for m, (_, v) in zip(msgs, events):
                days[v["ts"] // DAY].append(m)
            for d in sorted(days):  # a day every 0.3 s
                produce(run.bootstrap, days[d])
                time.sleep(0.3)

    def equal():
        a, b = forecasts_by_key(runs["slow"]), forecasts_by_key(runs["backlog"])
        closed = {k for k in a if k[1] // DAY - 1 <= last_day - 2}
        return closed and closed == {k for k in b if k[1] // DAY - 1 <= last_day - 2} \
            and all(a[k] == b[k] for k in closed)

    def differences() -> str:
        a, b = forecasts_by_key(runs["slow"]), forecasts_by_key(runs["backlog"])
        only = sorted(set(a) ^ set(b))
        diff = sorted(k for k in set(a) & set(b) if a[k] != b[k])
        first = {f: (a[diff[0]][f], b[diff[0]][f]) for f in a[diff[0]] if a[diff[0]][f] != b[diff[0]][f]} if diff else {}
        return f"in one only: {only[:5]} ({len(only)}); different: {diff[:3]} ({len(diff)}): {first}"

    wait_for(equal, 120, "the slow and the backlog replay to publish the same forecasts", on_fail=differences)
    for run in runs.values():
        assert read_topic(run.bootstrap, run.topic("dead_letters")) == []
    got = forecasts_by_key(runs["backlog"])
    first = min(v["ts"] for _, v in events) // DAY
    assert {k[1] // DAY - 1 for k in got} >= set(range(first, last_day - 1))  # every closed day, in order
