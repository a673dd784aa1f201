"""Cold starts in the stream: a SKU that never sold is forecast from the launches nearest by text.

An independent producer sends catalog records, then 46 days of orders for
40 products launched 15-24 days in (20 baubles selling 10 a day, 20 garden
hoses selling 1 a day) and one older product, and clicks for two products
that never sold: one more bauble and one more hose. An independent
consumer reads what the worker published: the two get forecasts flagged
``cold_start`` whose first-week median is what their text neighbours sold.
So does a bauble with a catalog record and no event at all, whose launch is
the day after the last forecast day; one launching six days later does not.
"""

from __future__ import annotations

import orjson
import pytest

from kafka_helpers import json_values, produce, read_topic, wait_for
from models.launch_prior import MIN_LAUNCHES
from schemas import validate
from stream_app.core.ticks import LAUNCH_MODEL

pytestmark = pytest.mark.integration

DAY, H = 86_400_000, 3_600_000
D0, DAYS = 20_000, 46
FAST = {f"F{i}": f"Red glass christmas bauble, hand painted, style {i}" for i in range(MIN_LAUNCHES)}
SLOW = {f"S{i}": f"Green rubber garden hose, {10 + i} m" for i in range(MIN_LAUNCHES)}
NEW = {"NEW-F": "Red glass christmas bauble, hand painted, new style", "NEW-S": "Green rubber garden hose, 50 m"}
# catalog records that name their launch and get no event: one the day after the last forecast day, one 6 days on
LAUNCHES = {"PRE-F": ("Red glass christmas bauble, hand painted, star", D0 + DAYS),
            "LATER-F": ("Red glass christmas bauble, hand painted, moon", D0 + DAYS + 6)}


def _catalog(run) -> list[tuple[str, bytes, bytes]]:
    # the launches that sell name their launch day too: what they sold from it is the catalog launches' prior
    records = [{"sku": sku, "title": title, "launched_at": (D0 + 15 + i % 10) * DAY + 9 * H}
               for group in (FAST, SLOW) for i, (sku, title) in enumerate(group.items())]
    records += [{"sku": sku, "title": title} for sku, title in NEW.items()]
    records += [{"sku": sku, "title": title, "launched_at": day * DAY + 9 * H} for sku, (title, day) in LAUNCHES.items()]
    return [(run.topic("catalog"), r["sku"].encode(),
             orjson.dumps({"schema_version": 1, "description": "", "category": "unknown", **r})) for r in records]


def _events(run) -> list[tuple[str, bytes, bytes]]:
    rows = [(d, "OLD", 3) for d in range(DAYS)]  # sold from the first day: older than the data, no launch
    for i, sku in enumerate(FAST):
        rows += [(d, sku, 10) for d in range(15 + i % 10, DAYS)]
    for i, sku in enumerate(SLOW):
        rows += [(d, sku, 1) for d in range(15 + i % 10, DAYS)]
    out = []
    for n, (d, sku, qty) in enumerate(sorted(rows)):
        ts = (D0 + d) * DAY + 10 * H
        out.append((run.topic("orders"), sku.encode(), orjson.dumps(
            {"schema_version": 1, "event_id": f"o{n}", "order_id": f"x{n}", "sku": sku, "ts": ts, "qty": qty,
             "unit_price": 2.0})))
        if sku != "OLD":
            continue
        # OLD is viewed every day, so the clicks topic is active from the start and a day waits for it: the two
        # never-sold products' views on the last two days are never late
        viewed = ["OLD", *NEW] if d >= DAYS - 2 else ["OLD"]
        out += [(run.topic("clicks"), v.encode(), orjson.dumps(
            {"schema_version": 1, "event_id": f"c{v}{d}", "sku": v, "ts": ts + H})) for v in viewed]
    # A click and an order two days on close the last day: with one partition there is no peer for an idle
    # topic to follow, so both active topics must pass it.
    at = (D0 + DAYS + 1) * DAY + 2 * H
    click = {"schema_version": 1, "event_id": "closer", "sku": "OLD", "ts": at}
    order = {"schema_version": 1, "event_id": "closer", "order_id": "closer", "sku": "OLD", "ts": at, "qty": 1,
             "unit_price": 2.0}
    return [*out, (run.topic("clicks"), b"OLD", orjson.dumps(click)), (run.topic("orders"), b"OLD", orjson.dumps(order))]


def test_a_product_that_never_sold_is_forecast_from_its_text_neighbours_launches(make_run):
    run = make_run(forecaster="model", partitions=1, cold_start=True)
    worker = run.start_worker()
    worker.wait(lambda m: m.get("trendcast_ready", 0) == 1, 120)  # its one-partition topics exist before we produce
    produce(run.bootstrap, _catalog(run))
    changelog = f"{run.settings.app_id}-sku-embeddings-v1-changelog"
    # the texts are embedded before the sales arrive, so every tick sees them
    wait_for(lambda: len({r.key for r in read_topic(run.bootstrap, changelog)}) == len(FAST) + len(SLOW) + len(NEW)
             + len(LAUNCHES),
             120, "every catalog text embedded", on_fail=run.logs)
    produce(run.bootstrap, _events(run))
    last = (D0 + DAYS) * DAY

    def last_forecasts():
        fs = {f["sku"]: f for f in json_values(read_topic(run.bootstrap, run.topic("forecasts"))) if f["as_of"] == last}
        return fs if {*NEW, *FAST, "PRE-F"} <= set(fs) else None

    forecasts = wait_for(last_forecasts, 180, "the last day's forecasts", on_fail=run.logs)
    for sku, rate in (("NEW-F", 10), ("NEW-S", 1), ("PRE-F", 10)):
        f = forecasts[sku]
        validate("forecasts", f)
        assert f["cold_start"] is True and f["model"] == LAUNCH_MODEL and f["calibrated"] is False, f
        assert [f["horizons"][h]["p50"] for h in ("1", "7", "14")] == [rate, 7 * rate, 14 * rate], f
    for sku in ("F0", "S0", "OLD"):  # having sold, a product is the model's
        assert "cold_start" not in forecasts[sku] and forecasts[sku]["model"]["name"] == "trendcast-net"
    cold = [f for f in json_values(read_topic(run.bootstrap, run.topic("forecasts"))) if f.get("cold_start")]
    assert {f["sku"] for f in cold} == {*NEW, "PRE-F"}  # never LATER-F, launching too far ahead
    assert forecasts["PRE-F"]["stage"] == "introduction" and forecasts["PRE-F"]["observed"]["units_28d"] == 0
    assert worker.metrics()["trendcast_cold_start_forecasts_total"] == len(cold)
