"""End to end on the embedded broker: events in, windows and forecasts out, bad input dead-lettered.

An independent aiokafka producer writes a known event set; a real worker
process consumes it; an independent consumer reads what the worker
published (forecasts, dead letters, the windows changelog).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import orjson
import pytest

from models.checkpoint import read_meta
from models.neural import DEFAULT_CHECKPOINT
from schemas import validate
from kafka_helpers import json_values, latest_windows, produce, read_topic, wait_for

pytestmark = pytest.mark.integration

DAY = 86_400_000
H = 3_600_000
D0 = 20_000  # 2024-10-04


def build_events(run, n_skus=30, days=5, seed=3):
    """Valid events over ``days`` days, their expected per-SKU totals, and the malformed ones."""
    rng = np.random.default_rng(seed)
    msgs: dict[str, list] = {"clicks": [], "carts": [], "orders": []}
    ledger: dict[str, dict] = defaultdict(lambda: dict(clicks=0, cart_adds=0, cart_removes=0, units=0, revenue=0.0))
    n = 0
    for day in range(days):
        for s in range(n_skus):
            sku = f"A{s:02d}"
            for _ in range(rng.integers(0, 6)):
                ts = (D0 + day) * DAY + int(rng.integers(0, DAY))
                msgs["clicks"].append((ts, sku, {"event_id": f"c{n}", "sku": sku, "ts": ts}))
                ledger[sku]["clicks"] += 1
                n += 1
            for _ in range(rng.integers(0, 3)):
                ts = (D0 + day) * DAY + int(rng.integers(0, DAY))
                qty, action = int(rng.integers(1, 3)), ("remove" if rng.random() < 0.25 else "add")
                msgs["carts"].append((ts, sku, {"event_id": f"k{n}", "sku": sku, "ts": ts, "qty": qty,
                                                "action": action}))
                ledger[sku]["cart_adds" if action == "add" else "cart_removes"] += qty
                n += 1
            if s % 5 == 4:
                continue  # every fifth SKU never sells
            for _ in range(rng.integers(0, 3)):
                ts = (D0 + day) * DAY + int(rng.integers(0, DAY))
                qty, price = int(rng.integers(1, 4)), float(rng.choice([1.25, 2.5, 9.99]))
                msgs["orders"].append((ts, sku, {"event_id": f"o{n}", "order_id": f"x{n}", "sku": sku, "ts": ts,
                                                 "qty": qty, "unit_price": price, "currency": "GBP"}))
                ledger[sku]["units"] += qty
                ledger[sku]["revenue"] += qty * price
                n += 1
    out = []
    for kind, items in msgs.items():
        for ts, sku, v in sorted(items, key=lambda x: x[0]):
            out.append((run.topic(kind), sku.encode(), orjson.dumps({"schema_version": 1, **v})))
    # A producer retry: the same order sent twice, as retries come, right after the first. Counted once,
    # not dead-lettered.
    at = next(i for i, m in enumerate(out) if m[0] == run.topic("orders"))
    out.insert(at + 1, out[at])
    # A click two days later closes days D0..D0+4 (idle partitions follow it).
    closer = {"schema_version": 1, "event_id": "closer", "sku": "A00", "ts": (D0 + days + 1) * DAY + 2 * H}
    out.append((run.topic("clicks"), b"A00", orjson.dumps(closer)))
    ledger["A00"]["clicks"] += 1

    base = {"schema_version": 1, "order_id": "bad", "sku": "A01", "ts": (D0 + days - 1) * DAY + 20 * H,
            "qty": 1, "unit_price": 1.0}
    bad = {
        "bad-json": ("orders", b'{"event_id": "bad-json", "sku": "A01", "ts": ', "bad_json"),
        "bad-missing": ("orders", {k: v for k, v in base.items() if k != "order_id"}, "missing_field"),
        "bad-type": ("orders", {**base, "qty": "3"}, "wrong_type"),
        "bad-negative": ("orders", {**base, "qty": -2}, "bad_value"),
        "bad-action": ("carts", {**base, "action": "delete"}, "bad_value"),
        "bad-future": ("orders", {**base, "ts": (D0 + 40) * DAY}, "future"),
        "bad-late": ("orders", {**base, "ts": (D0 - 10) * DAY}, "late"),
    }
    expected_reasons = {}
    for eid, (kind, value, code) in bad.items():
        raw = value if isinstance(value, bytes) else orjson.dumps({**value, "event_id": eid})
        out.append((run.topic(kind), b"A01", raw))
        expected_reasons[eid] = code
    return out, dict(ledger), expected_reasons


def test_worker_end_to_end(make_run):
    run = make_run()
    messages, ledger, expected_reasons = build_events(run)
    worker = run.start_worker()
    produce(run.bootstrap, messages)
    selling = {sku for sku, t in ledger.items() if t["units"] > 0}

    def windows_match():
        got = latest_windows(run)
        return got if set(got) == set(ledger) and all(_same(got[s], ledger[s]) for s in ledger) else None

    got = wait_for(windows_match, 90, "windows changelog to equal the produced ledger",
                   on_fail=lambda: f"{_diff(latest_windows(run), ledger)}\n{run.logs()}")
    assert got  # every SKU, every channel, exactly

    last_day_end = (D0 + 5) * DAY

    def forecasts_done():
        fs = json_values(read_topic(run.bootstrap, run.topic("forecasts")))
        done = {f["sku"] for f in fs if f["as_of"] == last_day_end}
        return fs if selling <= done else None

    forecasts = wait_for(forecasts_done, 60, "a forecast for every selling SKU at the last closed day",
                         on_fail=run.logs)
    model = {"name": "trendcast-net", "version": read_meta(DEFAULT_CHECKPOINT)["id"]}
    for f in forecasts:
        validate("forecasts", f)
        for h in f["horizons"].values():
            assert 0 <= h["p10"] <= h["p50"] <= h["p90"]
        assert f["model"] == model  # the shipped network, not the baseline
    keys = {r.key.decode() for r in read_topic(run.bootstrap, run.topic("forecasts"))}
    assert keys == {f["sku"] for f in forecasts}  # keyed by SKU

    dead = read_topic(run.bootstrap, run.topic("dead_letters"))
    by_id = {}
    for r in dead:
        d = orjson.loads(r.value)
        validate("dead-letters", d)
        text = d["value_text"] or ""
        eid = next((e for e in expected_reasons if f'"{e}"' in text), None)
        assert eid is not None, f"a valid event was dead-lettered: {d}"
        by_id[eid] = d
    assert {e: d["reason"]["code"] for e, d in by_id.items()} == expected_reasons
    assert len(dead) == len(expected_reasons)
    for d in by_id.values():
        assert d["source_topic"] in (run.topic("orders"), run.topic("carts")) and d["reason"]["message"]

    m = worker.metrics()
    assert m["trendcast_duplicates_dropped_total"] == 1
    assert m["trendcast_events_invalid_total"] == len(expected_reasons)
    assert m["trendcast_events_consumed_total"] == len(messages)


def _same(got: dict, want: dict) -> bool:
    return all(got[k] == want[k] for k in ("clicks", "cart_adds", "cart_removes", "units")) and math.isclose(
        got["revenue"], want["revenue"], rel_tol=1e-9, abs_tol=1e-9)


def _diff(got: dict, want: dict) -> str:
    rows = [f"{s}: got {got.get(s)} want {want[s]}" for s in sorted(want) if s not in got or not _same(got[s], want[s])]
    return "\n".join(rows[:10]) or f"unexpected SKUs: {set(got) - set(want)}"
