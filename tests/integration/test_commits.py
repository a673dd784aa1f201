"""The group's committed offsets follow what the worker applied, for every mix of topics, and never run ahead.

Read with an independent aiokafka client (``committed()``): a worker that
stops committing re-reads whole topics after every restart, and its lag
metric reads the whole topic as lag. Faust 0.15.3 has two builds of its
stream (compiled and pure Python); the worker must commit the same way with
both, so each test runs under both (``NO_CYTHON=1`` selects the pure one).
"""

from __future__ import annotations

import signal
import time

import numpy as np
import orjson
import pytest
from kafka_helpers import committed_offsets, latest_windows, produce_ends, wait_for

from stream_app.cli.bench import WorkerProc

pytestmark = pytest.mark.integration

DAY = 86_400_000
D0 = 20_300
BUILDS = {"compiled": {}, "pure": {"NO_CYTHON": "1"}}


def events(run, kinds: tuple[str, ...], n: int = 6_000, skus: int = 80, days: int = 4, seed: int = 11):
    """``n`` valid events per kind over ``days`` days, in event-time order, plus catalog records."""
    rng = np.random.default_rng(seed)
    out = []
    for kind in kinds:
        if kind == "catalog":
            for s in range(skus):
                rec = {"schema_version": 1, "sku": f"C{s:03d}", "title": f"item {s}", "description": "a thing",
                       "category": "things"}
                out.append((run.topic("catalog"), f"C{s:03d}".encode(), orjson.dumps(rec)))
            continue
        ts = np.sort(D0 * DAY + rng.integers(0, days * DAY, size=n))
        for i in range(n):
            sku = f"C{int(rng.integers(0, skus)):03d}"
            v = {"schema_version": 1, "event_id": f"{kind}{i}", "sku": sku, "ts": int(ts[i])}
            if kind == "orders":
                v |= {"order_id": f"x{i}", "qty": 1, "unit_price": 2.0}
            elif kind == "carts":
                v |= {"qty": 1, "action": "add"}
            out.append((run.topic(kind), sku.encode(), orjson.dumps(v)))
    return out


def wait_committed(run, ends: dict, timeout: float) -> None:
    def caught_up():
        got = committed_offsets(run.bootstrap, run.settings.app_id, sorted(ends))
        return got if all(got[tp] == end for tp, end in ends.items()) else None

    wait_for(caught_up, timeout, "committed offsets to reach the end offsets",
             on_fail=lambda: f"ends {ends}\ncommitted "
                             f"{committed_offsets(run.bootstrap, run.settings.app_id, sorted(ends))}\n{run.logs()}")


ALL = ("clicks", "carts", "orders", "catalog")


@pytest.mark.parametrize(("kinds", "build"), [(("orders",), "compiled"), (("orders", "catalog"), "compiled"),
                                              (ALL, "compiled"), (ALL, "pure")],
                         ids=["orders", "orders+catalog", "all", "all-pure"])
def test_commits_follow_the_end_offsets(make_run, monkeypatch, kinds, build):
    for k, v in BUILDS[build].items():
        monkeypatch.setenv(k, v)
    run = make_run(forecaster="baseline", commit_interval_s=1.0)
    worker = run.start_worker()
    worker.wait(lambda m: m.get("trendcast_ready", 0) == 1, 60)
    msgs = events(run, kinds)
    ends = produce_ends(run.bootstrap, msgs)
    worker.wait(lambda m: m.get("trendcast_events_consumed_total", 0) >= len(msgs), 60)
    # The last days' records may wait for a topic that never speaks (idle_timeout_s), then a flush
    # and a commit interval.
    wait_committed(run, ends, run.settings.idle_timeout_s + 2 * run.settings.tick_check_s + 1.0
                   + run.settings.flush_interval_s + 8)


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_a_clean_stop_commits_what_was_applied(make_run, monkeypatch, build):
    """A commit interval far longer than the test: only the final commit on SIGTERM can reach the ends."""
    for k, v in BUILDS[build].items():
        monkeypatch.setenv(k, v)
    run = make_run(forecaster="baseline", commit_interval_s=120.0)
    worker = run.start_worker()
    worker.wait(lambda m: m.get("trendcast_ready", 0) == 1, 60)
    msgs = events(run, ALL)
    ends = produce_ends(run.bootstrap, msgs)
    worker.wait(lambda m: m.get("trendcast_events_consumed_total", 0) >= len(msgs)
                and m.get("trendcast_records_waiting", 1) == 0, 60)
    assert all(c is None for c in committed_offsets(run.bootstrap, run.settings.app_id, sorted(ends)).values())
    worker.stop(signal.SIGTERM)
    assert worker.proc.returncode == 0
    wait_committed(run, ends, 5)


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_no_commit_runs_ahead_of_the_state(make_run, monkeypatch, build):
    """Commits come every 0.5 s, the first changelog write only after 30 s: nothing may be committed before it.

    Then a SIGKILL, and a restarted worker must count every unit exactly once.
    """
    for k, v in BUILDS[build].items():
        monkeypatch.setenv(k, v)
    run = make_run(forecaster="baseline", commit_interval_s=0.5, flush_interval_s=30.0)
    msgs = events(run, ("orders",), n=8_000)
    units: dict[str, int] = {}
    for _, key, value in msgs:
        units[key.decode()] = units.get(key.decode(), 0) + orjson.loads(value)["qty"]
    half = len(msgs) // 2
    first = run.start_worker()
    first.wait(lambda m: m.get("trendcast_ready", 0) == 1, 60)
    ends = produce_ends(run.bootstrap, msgs[:half])
    first.wait(lambda m: m.get("trendcast_events_consumed_total", 0) >= half, 20)
    time.sleep(2.0)  # four commit intervals
    committed = committed_offsets(run.bootstrap, run.settings.app_id, sorted(ends))
    first.stop(signal.SIGKILL)
    assert not latest_windows(run), "the test needs the kill to come before the first changelog write"
    assert all(c is None for c in committed.values()), f"committed ahead of the state: {committed}"

    produce_ends(run.bootstrap, msgs[half:])
    second = WorkerProc.start({**run.env, "TRENDCAST_FLUSH_INTERVAL_S": "0.5"}, run.log)
    run.workers.append(second)

    def complete():
        got = {s: t["units"] for s, t in latest_windows(run).items()}
        return got if got == units else None

    wait_for(complete, 90, "per-SKU units to equal the ledger after the kill", on_fail=run.logs)
