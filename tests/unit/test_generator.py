"""The demo generator is deterministic, ordered, follows the topic contracts and has a plausible funnel."""

from collections import Counter

import orjson
import pytest

from stream_app.decode import KINDS, Event, decode, decode_catalog
from stream_app.generator import CATEGORIES, DAY_MS, DemoGenerator, write_jsonl

START = 20_000 * DAY_MS  # a midnight, 2024-10-04 UTC

CLICK_FIELDS = {"schema_version", "event_id", "sku", "ts", "session_id", "user_id"}
CART_FIELDS = {"schema_version", "event_id", "sku", "ts", "qty", "action"}
ORDER_FIELDS = {"schema_version", "event_id", "order_id", "sku", "ts", "qty", "unit_price", "currency"}
CATALOG_FIELDS = {"schema_version", "sku", "title", "description", "category", "price", "launched_at"}


@pytest.fixture(scope="module")
def gen():
    return DemoGenerator(n_skus=120, days=28, start_ms=START, seed=3, events_per_sku_day=40)


@pytest.fixture(scope="module")
def events(gen):
    return list(gen.events())


def test_same_seed_same_stream_other_seed_differs(gen, events):
    again = DemoGenerator(n_skus=120, days=28, start_ms=START, seed=3, events_per_sku_day=40)
    assert list(again.events()) == events
    assert list(gen.events()) == events  # replayable: no state is consumed
    assert again.catalog() == gen.catalog()
    other = DemoGenerator(n_skus=120, days=28, start_ms=START, seed=4, events_per_sku_day=40)
    assert [e for _, e in other.events()][:50] != [e for _, e in events][:50]


def test_ts_non_decreasing_and_inside_window(events):
    ts = [e["ts"] for _, e in events]
    assert all(a <= b for a, b in zip(ts, ts[1:]))
    assert START <= ts[0] and ts[-1] < START + 28 * DAY_MS


def test_fields_and_types_follow_the_contract(events):
    expected = {"clicks": CLICK_FIELDS, "carts": CART_FIELDS, "orders": ORDER_FIELDS}
    for kind, e in events:
        assert set(e) == expected[kind], (kind, e)
        assert e["schema_version"] == 1 and type(e["ts"]) is int and type(e["sku"]) is str
        if kind != "clicks":
            assert type(e["qty"]) is int and e["qty"] >= 1
        if kind == "carts":
            assert e["action"] in ("add", "remove")
        if kind == "orders":
            assert type(e["unit_price"]) is float and e["unit_price"] >= 0
        # The worker's own decoder accepts every generated event.
        assert type(decode(KINDS.index(kind), e["sku"].encode(), orjson.dumps(e))) is Event
    ids = [e["event_id"] for _, e in events]
    assert len(set(ids)) == len(ids)


def test_catalog_records(gen):
    cat = gen.catalog()
    assert [r["sku"] for r in cat] == gen.skus and len(cat) == 120
    for r in cat:
        assert set(r) == CATALOG_FIELDS and r["category"] in CATEGORIES
        assert r["price"] > 0 and type(r["launched_at"]) is int
        assert type(decode_catalog(r["sku"].encode(), orjson.dumps(r))) is dict
    assert len({r["category"] for r in cat}) == len(CATEGORIES)


def test_funnel_ratios_and_volume(events):
    n = Counter(k if k != "carts" else f"cart-{e['action']}" for k, e in events)
    assert 15 < n["clicks"] / n["orders"] < 26
    assert 2.4 < n["cart-add"] / n["orders"] < 3.6
    assert 0.14 < n["cart-remove"] / n["cart-add"] < 0.26
    assert 0.8 < len(events) / (120 * 28 * 40) < 1.2  # events_per_sku_day is honoured
    qty = Counter(e["qty"] for k, e in events if k == "orders")
    assert sum(qty[q] for q in (1, 2, 3)) / sum(qty.values()) > 0.9


def test_no_events_before_launch_and_lifecycles_vary(gen, events):
    launched = {r["sku"]: r["launched_at"] for r in gen.catalog()}
    assert all(e["ts"] >= launched[e["sku"]] for _, e in events)
    in_window = [s for s, t in launched.items() if START < t < START + 28 * DAY_MS]
    assert len(in_window) >= 10  # introduction and growth are visible in the window
    first = {}
    for _, e in events:
        first.setdefault(e["sku"], e["ts"])
    assert any(s in first for s in in_window)
    # Older SKUs in decline: their last week sells less than their first.
    weekly = Counter((e["sku"], (e["ts"] - START) // (7 * DAY_MS)) for k, e in events if k == "clicks")
    old = [s for s, t in launched.items() if t < START - 120 * DAY_MS]
    assert any(weekly[(s, 3)] < 0.7 * weekly[(s, 0)] for s in old)


def test_write_jsonl(tmp_path, gen):
    path = tmp_path / "ev.jsonl"
    items = [("catalog", r) for r in gen.catalog()[:3]] + [("orders", {"sku": "x", "ts": 1})]
    assert write_jsonl(path, items) == 4
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    assert lines[0] == {"topic": "catalog", "value": gen.catalog()[0]}
    assert lines[-1] == {"topic": "orders", "value": {"sku": "x", "ts": 1}}


def test_bad_arguments():
    with pytest.raises(ValueError):
        DemoGenerator(n_skus=0, days=3, start_ms=START, seed=1)
