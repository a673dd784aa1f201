"""Batch ingest into windows and the forecast tick, without Kafka."""

from collections import namedtuple

import numpy as np
import orjson

from models.baselines import EwmaForecaster
from stream_app.core.ingest import Ingestor
from stream_app.core.ticks import run_tick
from stream_app.core.windows import KIND_CLICK, KIND_ORDER, WindowSpec

Rec = namedtuple("Rec", "offset key value")  # what the worker passes: aiokafka ConsumerRecords
DAY = 86_400_000
H = 3_600_000
T = 20_000 * DAY


def order(i, sku, ts, qty=1, price=2.0, eid=None):
    v = {"schema_version": 1, "event_id": eid or f"o{i}", "order_id": f"x{i}", "sku": sku, "ts": ts,
         "qty": qty, "unit_price": price}
    return Rec(i, sku.encode(), orjson.dumps(v))


def ingestor(**kw):
    args = dict(grace_ms=H, max_ahead_ms=3 * DAY, future_confirm=3)
    args.update(kw)
    return Ingestor({}, WindowSpec(history_days=28), **args)


def test_batch_updates_windows_and_rejects_with_reasons():
    ing = ingestor()
    recs = [order(0, "A", T + 10 * H, qty=2), order(1, "B", T + 10 * H), Rec(2, b"A", b"oops"),
            order(3, "A", T + 5 * H),  # 5 h behind, but its day is open: on time
            order(4, "A", T + 40 * DAY),  # bad clock: the next record is not ahead, so it is refuted
            order(5, "A", T + 11 * H, eid="o0"),  # producer duplicate of offset 0
            order(6, "B", T + DAY + 2 * H),  # the orders topic closes day T (grace 1 h)
            order(7, "A", T + 20 * H)]  # late: its day is closed
    out = ing.process(KIND_ORDER, 1, recs)
    assert (out.consumed, out.applied, out.duplicates) == (8, 4, 1)
    assert sorted(r.code for r in out.rejected) == ["bad_json", "future", "late"]
    assert {r.code: r.offset for r in out.rejected} == {"bad_json": 2, "future": 4, "late": 7}
    a = ing.spec.load(ing.store[b"A"])
    assert a.totals()["units"] == 3 and a.totals()["revenue"] == 6.0
    assert ing.dirty == {1: {b"A", b"B"}} and ing.pending == {1: {b"A": T // DAY, b"B": T // DAY}}


def test_events_of_an_open_day_are_applied_in_any_order():
    ing = ingestor()
    hours = [23, 2, 17, 0, 9, 22, 1, 12]
    out = ing.process(KIND_ORDER, 0, [order(i, "A", T + h * H) for i, h in enumerate(hours)])
    assert (out.applied, out.rejected) == (8, [])
    # Across midnight within the grace period: 00:30 of the next day, then 23:45 of this one.
    out = ing.process(KIND_ORDER, 0, [order(8, "A", T + DAY + H // 2), order(9, "A", T + DAY - H // 4)])
    assert (out.applied, out.rejected) == (2, [])
    assert ing.spec.load(ing.store[b"A"]).totals()["units"] == 10


def test_redelivery_after_restart_applies_nothing_twice_and_dead_letters_nothing_twice():
    ing = ingestor()
    recs = [order(0, "A", T + DAY + 2 * H), order(1, "A", T + 5 * H), order(2, "A", T + DAY + 2 * H + 1)]
    first = ing.process(KIND_ORDER, 0, recs)
    assert (first.applied, [r.code for r in first.rejected]) == (2, ["late"])
    # Restart: same store (restored from the changelog), fresh clocks.
    again = Ingestor(ing.store, ing.spec, grace_ms=H, max_ahead_ms=3 * DAY, future_confirm=3)
    out = again.process(KIND_ORDER, 0, recs + [order(3, "A", T + DAY + 2 * H + 2)])
    assert (out.applied, out.redelivered, out.rejected) == (1, 3, [])
    assert ing.spec.load(again.store[b"A"]).totals()["units"] == 3


def test_closing_a_day_ticks_once_and_forecasts_skus_with_new_events():
    ing = ingestor()
    recs = [order(i, f"S{i % 3}", T + i * H // 2, qty=1 + i % 2) for i in range(40)]
    ing.process(KIND_ORDER, 0, recs, now=0.0)
    # 11 s later (idle_s is 10): carts never spoke, the orders went quiet, the click decides.
    out = ing.process(KIND_CLICK, 0, [Rec(0, b"S0", orjson.dumps(
        {"schema_version": 1, "event_id": "c", "sku": "S0", "ts": T + DAY + 2 * H}))], now=11.0)
    assert out.closed_days == [T // DAY]
    res = run_tick(ing, 0, T // DAY, EwmaForecaster())
    msgs = [orjson.loads(v) for _, v in res.forecasts]
    assert sorted(m["sku"] for m in msgs) == ["S0", "S1", "S2"]
    m = msgs[0]
    assert m["as_of"] == T + DAY and set(m["horizons"]) == {"1", "7", "14"}
    for h in m["horizons"].values():
        assert 0 <= h["p10"] <= h["p50"] <= h["p90"]
    assert abs(sum(m["stage_probs"].values()) - 1) < 1e-3
    # S0 had a click on the next day: it stays pending for the next tick; the others do not.
    assert ing.pending[0] == {b"S0": T // DAY + 1}
    assert res.alerts == []  # first stage of a SKU is not a change


def test_restore_rebuilds_the_clock_from_sku_states_and_pending_forecasts():
    ing = ingestor()
    ing.process(KIND_ORDER, 2, [order(0, "A", T + 10 * H), order(1, "B", T + 12 * H)], now=0.0)
    restarted = Ingestor(ing.store, ing.spec, grace_ms=H, max_ahead_ms=3 * DAY, future_confirm=3)
    assert restarted.restore_partition(2, now=0.0) == 2
    assert restarted.clock(2).applied == [None, None, T + 12 * H]
    assert restarted.pending == {2: {b"A": T // DAY, b"B": T // DAY}}
    assert restarted.restore_partition(3, now=0.0) == 0  # other partitions' SKUs are not mixed in


def test_a_partition_restored_before_its_first_closed_day_still_closes_its_days():
    """A restart or a rebalance before a partition's first day closed (a worker's first day in production).

    The restored clock has its topics' newest times but no forecast day; its days must close as they
    would have without the restart: the first from the day of the partition's earliest event on.
    """
    def run(restart: bool) -> list[int]:
        ing = ingestor()
        ing.process(KIND_ORDER, 2, [order(0, "A", T + 10 * H), order(1, "B", T + DAY + 3 * H)], now=0.0)
        if restart:
            ing = Ingestor(ing.store, ing.spec, grace_ms=H, max_ahead_ms=3 * DAY, future_confirm=3)
            ing.restore_partition(2, now=0.0)
        out = ing.process(KIND_ORDER, 2, [order(2, "A", T + 3 * DAY + 2 * H)], now=20.0)
        return out.closed_days

    assert run(restart=False) == [T // DAY, T // DAY + 1]
    assert run(restart=True) == [T // DAY, T // DAY + 1]


def test_a_producer_retry_arriving_late_is_a_duplicate_not_a_dead_letter():
    ing = ingestor()
    out = ing.process(KIND_ORDER, 0, [order(0, "A", T + H, eid="x"), order(1, "A", T + DAY + 2 * H),
                                      order(2, "A", T + H, eid="x")])
    assert (out.applied, out.duplicates, out.rejected) == (2, 1, [])


class Growing:
    """A forecaster sure that every SKU grows, selling 2 units a day (p10 1, p90 3)."""

    name, version = "growing", "1"

    def predict(self, features):
        import numpy as np

        from models.interface import HORIZONS, ForecastBatch

        n = len(features)
        q = np.array([[1.0, 2.0, 3.0]], np.float32) * np.array(HORIZONS, np.float32)[:, None]
        return ForecastBatch(np.tile(q, (n, 1, 1)), np.tile(np.float32([0.05, 0.9, 0.04, 0.01]), (n, 1)))


def test_a_growing_sku_short_of_stock_is_alerted_once_per_shortage_with_its_stock_position():
    from models.stage_tracker import TrackerRules
    from schemas import validate
    from stream_app.core import inventory
    from stream_app.core.scorer import Scorer
    from stream_app.core.ticks import TickTools

    ing = ingestor()
    stock = {b"A": inventory.encode(5.0, T), b"B": inventory.encode(500.0, T)}
    rules = inventory.StockRules(lead_days=7, service_level=0.9, low_cover_days=7.0)
    tools = TickTools(Scorer(Growing()), rules=TrackerRules(persist_days=1), inventory=stock, stock=rules)
    alerts = []
    for d in range(4):
        if d == 2:
            stock[b"A"] = inventory.replace_count(stock[b"A"], 200.0, T + d * DAY)  # restocked
        if d == 3:
            stock[b"A"] = inventory.replace_count(stock[b"A"], 1.0, T + d * DAY)  # short again
        day = T + d * DAY
        # 6 units a day: enough for the sales to show growth significantly (models/stage_evidence.py)
        ing.process(KIND_ORDER, 0, [order(10 * d, "A", day + H, qty=6), order(10 * d + 1, "B", day + H, qty=6)],
                    now=0.0)
        out = ing.process(KIND_CLICK, 0, [Rec(10 * d + 2, b"A", orjson.dumps(
            {"schema_version": 1, "event_id": f"c{d}", "sku": "A", "ts": day + DAY + 2 * H}))], now=11.0)
        for closed in out.closed_days:
            res = run_tick(ing, 0, closed, tools)
            alerts += [orjson.loads(v) for _, v in res.alerts]
    for a in alerts:
        validate("stage-alerts", a)
    assert [(a["sku"], a["kind"], a["as_of"]) for a in alerts] == [
        ("A", "low_cover", T + DAY), ("A", "low_cover", T + 4 * DAY)]
    first = alerts[0]
    assert first["stage"] == first["previous_stage"] == "growth"
    # 5 units at 2 a day (the 7-day p50 is 14): 2.5 days; order up to the 7-day p90 of 21 at service level 0.9
    assert first["inventory"] == {"on_hand": 5.0, "on_hand_ts": T, "days_of_cover": 2.5, "reorder_qty": 16.0,
                                  "service_level": 0.9}
    assert first["lead_time"] == {"days": 7, "p50": 14.0, "p90": 21.0}



class Crossing:
    """A forecaster whose 14-day quantiles fall below its 7-day ones (as separately calibrated horizons can)."""

    name, version = "crossing", "1"

    def predict(self, features):
        import numpy as np

        from models.interface import ForecastBatch

        q = np.array([[5.0, 17.5, 23.8], [16.8, 142.5, 150.0], [0.0, 134.0, 140.0]], np.float32)
        n = len(features)
        return ForecastBatch(np.tile(q, (n, 1, 1)), np.tile(np.float32([0.05, 0.9, 0.04, 0.01]), (n, 1)))


def test_a_published_forecast_never_has_a_longer_horizon_selling_less():
    ing = ingestor()
    ing.process(KIND_ORDER, 0, [order(i, "S0", T + i * H) for i in range(5)], now=0.0)
    ing.process(KIND_CLICK, 0, [Rec(0, b"S0", orjson.dumps(
        {"schema_version": 1, "event_id": "c", "sku": "S0", "ts": T + DAY + 2 * H}))], now=11.0)
    m = orjson.loads(run_tick(ing, 0, T // DAY, Crossing()).forecasts[0][1])
    h = m["horizons"]
    for q in ("p10", "p50", "p90"):
        assert h["1"][q] <= h["7"][q] <= h["14"][q]
    assert (h["14"]["p10"], h["14"]["p50"], h["14"]["p90"]) == (16.8, 142.5, 150.0)


class Owned(dict):
    """A dict that notes which threads read or write it."""

    def __init__(self, *args):
        super().__init__(*args)
        self.threads = set()

    def _seen(self):
        import threading

        self.threads.add(threading.get_ident())

    def __getitem__(self, key):
        self._seen()
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._seen()
        return super().get(key, default)

    def __setitem__(self, key, value):
        self._seen()
        super().__setitem__(key, value)

    def __contains__(self, key):
        self._seen()
        return super().__contains__(key)


def test_a_ticks_work_off_the_loop_touches_no_shared_state_and_publishes_what_running_it_inline_does():
    """The worker runs each job of :func:`tick_steps` on a thread while its loop applies events.

    The ownership rule that makes this safe: windows, stock records and
    catalog categories are read and written only by the thread that drives
    the steps, never by a job; an event applied to a SKU while its job runs
    leaves the tick's forecast as it was and the SKU's later day pending.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from models.stage_tracker import TrackerRules
    from stream_app.core import inventory
    from stream_app.core.scorer import Scorer
    from stream_app.core.ticks import OffLoopJob, TickResult, TickTools, tick_steps

    def setup():
        ing = Ingestor(Owned(), WindowSpec(history_days=28), grace_ms=H, max_ahead_ms=3 * DAY, future_confirm=3)
        stock = Owned({f"S{i}".encode(): inventory.encode(float(i), T) for i in range(12)})
        calls = set()

        def groups(keys):
            calls.add(threading.get_ident())
            return np.array(["toys" if k < b"S5" else "unknown" for k in keys], dtype=object)

        tools = TickTools(Scorer(Growing()), rules=TrackerRules(persist_days=1), inventory=stock, groups=groups,
                          batch_size=5)
        for d in range(3):
            ing.process(KIND_ORDER, 0, [order(100 * d + i, f"S{i}", T + d * DAY + H, qty=1 + i + d)
                                        for i in range(12)], now=0.0)
        return ing, tools, stock, calls

    inline, tools_a, _, _ = setup()
    ticked = [run_tick(inline, 0, T // DAY + d, tools_a) for d in range(2)]

    ing, tools, stock, calls = setup()
    here = threading.get_ident()
    results = []
    with ThreadPoolExecutor(1) as pool:
        for d in range(2):
            res = TickResult()
            for step in tick_steps(ing, 0, T // DAY + d, tools, res):
                if isinstance(step, OffLoopJob):
                    pool.submit(step.run).result()
                    if d == 1 and not results[-1:] == ["applied"]:
                        # S1's next day arrives while its micro-batch's job has run but before it is recorded
                        got = ing.process(KIND_ORDER, 0, [order(999, "S1", T + 2 * DAY + 5 * H)], now=0.0)
                        assert got.applied == 1
                        results.append("applied")
            results.append(res)
    assert ing.store.threads == stock.threads == calls == {here}
    for a, b in zip(ticked, [r for r in results if isinstance(r, TickResult)]):
        assert a.forecasts == b.forecasts and a.alerts == b.alerts
    # The event applied meanwhile is kept, and the tick's mark with it.
    s1, before = ing.spec.load(ing.store[b"S1"]), inline.spec.load(inline.store[b"S1"])
    assert s1.totals()["units"] == before.totals()["units"] + 1 and s1.max_ts(KIND_ORDER) == T + 2 * DAY + 5 * H
    assert s1.forecast_day == before.forecast_day == T // DAY + 1


def click(i, sku, ts):
    return Rec(i, sku.encode(), orjson.dumps({"schema_version": 1, "event_id": f"c{i}", "sku": sku, "ts": ts}))


def _launch_world():
    """46 days of a partition: OLD sold from the first day, 20 launches near a "fast" text (10 a day) and 20 near a
    "slow" one (1 a day), 15-24 days in; on the last day, clicks for three SKUs that never sold (two with texts)."""
    from models.launch_prior import MIN_LAUNCHES
    from stream_app.core.scorer import embedding_record

    rng = np.random.default_rng(5)
    fast, slow = (v / np.linalg.norm(v) for v in rng.normal(size=(2, 384)))

    def near(v):
        w = v + 0.05 * rng.normal(size=384)
        return embedding_record("t", (w / np.linalg.norm(w)).astype(np.float32))

    d0 = T // DAY
    day_ms = lambda d: d * DAY + 10 * H  # noqa: E731
    events = [(d0 + d, "OLD", 3) for d in range(46)]  # sold from the first day: older than the data, no launch
    for i in range(MIN_LAUNCHES):  # launches 15-24 days after the first sale: 10 a day near "fast", 1 near "slow"
        events += [(d0 + d, f"F{i}", 10) for d in range(15 + i % 10, 46)]
        events += [(d0 + d, f"S{i}", 1) for d in range(15 + i % 10, 46)]
    events.sort()
    ing = Ingestor({}, WindowSpec(history_days=56), grace_ms=H, max_ahead_ms=3 * DAY, future_confirm=3)
    recs = [order(n, sku, day_ms(d), qty=q) for n, (d, sku, q) in enumerate(events)]
    for d in range(d0, d0 + 46):  # a day at a time, each past the idle timeout: the silent topics do not hold it
        ing.process(KIND_ORDER, 0, [r for r, (day, _, _) in zip(recs, events) if day == d], now=11.0 * (d - d0))
    ing.process(KIND_CLICK, 0, [click(n, s, day_ms(d0 + 45)) for n, s in enumerate(["NEW-F", "NEW-S", "NEW-BARE"])],
                now=11.0 * 46)
    store = {f"{p}{i}".encode(): near(fast if p == "F" else slow) for p in "FS" for i in range(MIN_LAUNCHES)}
    store[b"NEW-F"], store[b"NEW-S"] = near(fast), near(slow)
    return ing, store, d0, lambda: near(fast), lambda: near(slow)


def test_a_sku_that_never_sold_is_forecast_from_the_launches_nearest_by_text_and_flagged():
    from models.launch_prior import MIN_LAUNCHES
    from stream_app.core.outcomes import Pending
    from stream_app.core.scorer import Scorer
    from stream_app.core.ticks import LAUNCH_MODEL, TickTools

    ing, store, d0, _, _ = _launch_world()

    def tick(day, launches):
        pending = Pending()
        tools = TickTools(Scorer(EwmaForecaster()), embeddings=store, cold_start=True, launches=launches,
                          pending=pending)
        res = run_tick(ing, 0, day, tools)
        return res, {m["sku"]: m for m in (orjson.loads(v) for _, v in res.forecasts)}, pending

    first, msgs, _ = tick(d0 + 45, None)
    assert not any(m.get("cold_start") for m in msgs.values())  # no launch seen yet: the model answers
    assert len(first.launches) == 2 * MIN_LAUNCHES  # every F and S launch; OLD sold from the first day
    second, msgs, pending = tick(d0 + 46, first.launches)
    for sku, rate in (("NEW-F", 10), ("NEW-S", 1)):
        m = msgs[sku]
        assert m["cold_start"] is True and m["model"] == LAUNCH_MODEL and m["calibrated"] is False
        assert m["id"].endswith(f"/{LAUNCH_MODEL['name']}:{LAUNCH_MODEL['version']}")
        assert [m["horizons"][h]["p50"] for h in ("1", "7", "14")] == [rate, 7 * rate, 14 * rate]
    # without a text (NEW-BARE), or once sold (F0, OLD), a SKU is the model's as before
    assert "cold_start" not in msgs["NEW-BARE"] and msgs["NEW-BARE"]["model"]["name"] != LAUNCH_MODEL["name"]
    assert "cold_start" not in msgs["F0"] and "cold_start" not in msgs["OLD"]
    # a cold start's outcome will not teach the calibrator: it is not among the forecasts awaiting one
    (_, _, made), *_ = pending.due(d0 + 47)
    assert b"NEW-F" not in made.keys and b"NEW-BARE" in made.keys and b"F0" in made.keys


def test_a_catalog_record_naming_its_launch_is_forecast_the_day_before_and_withdrawn_if_it_launches_silent():
    from models.launch_prior import MIN_LAUNCHES
    from schemas import validate
    from stream_app.core.scorer import Scorer
    from stream_app.core.ticks import LAUNCH_MODEL, TickTools

    ing, store, d0, fast, slow = _launch_world()
    last = d0 + 45  # the last closed day: catalog-only SKUs below launch relative to the day after it
    # the launches with events, on the day of their first sale, and one that never had an event
    launch = {f"{p}{i}".encode(): d0 + 15 + i % 10 for p in "FS" for i in range(MIN_LAUNCHES)}
    launch |= {b"PRE-F": last + 2, b"PRE-S": last + 2, b"LATER": last + 3, b"TEXTLESS": last + 2,
               b"GONE": last, b"SILENT": d0 + 20, b"NEW-F": last + 2}  # NEW-F has a window: the model's
    store.update({b"PRE-F": fast(), b"PRE-S": slow(), b"LATER": fast(), b"GONE": fast(), b"SILENT": slow()})

    def tick(day, reference):
        tools = TickTools(Scorer(EwmaForecaster()), embeddings=store, launch_days=launch, catalog_reference=reference)
        res = run_tick(ing, 0, day, tools)
        return res, {m["sku"]: m for m in (orjson.loads(v) for _, v in res.forecasts)}

    first, msgs = tick(last, None)
    # nothing launches tomorrow yet; a launch that closed without an event gets its last forecast, zeros
    assert {"PRE-F", "PRE-S", "LATER", "TEXTLESS", "SILENT"}.isdisjoint(msgs) and first.cold_starts == 0
    assert msgs["GONE"]["active"] is False and msgs["GONE"]["horizons"]["14"] == {"p10": 0, "p50": 0, "p90": 0}
    assert not any(m.get("cold_start") for m in msgs.values())  # cold starts of windows are off
    # what the catalog's launches sold from their launch day, the one without an event too (zeros)
    ref = first.catalog_reference
    assert len(ref) == 2 * MIN_LAUNCHES + 1 and sorted(ref.totals[:, 1])[:2] == [0, 7]
    # PRE-F's first click, on its launch day, is in before the day before is forecast: that day it had none
    ing.process(KIND_CLICK, 0, [click(98, "PRE-F", (last + 2) * DAY + H)], now=11.0 * 47)
    assert b"PRE-F" in ing.store
    second, msgs = tick(last + 1, ref)
    for sku, rate in (("PRE-F", 10), ("PRE-S", 1)):
        m = msgs[sku]
        validate("forecasts", m)
        assert m["cold_start"] is True and m["model"] == LAUNCH_MODEL and m["calibrated"] is False and m["active"]
        assert m["stage"] == "introduction" and m["observed"]["units_28d"] == 0
        assert [m["horizons"][h]["p50"] for h in ("1", "7", "14")] == [rate, 7 * rate, 14 * rate]
    assert second.cold_starts == 2
    # launching later than the next day, without a text, silent since its launch, or with events, a SKU is not
    # the launch prior's
    assert {"LATER", "TEXTLESS", "SILENT"}.isdisjoint(msgs) and "cold_start" not in msgs["NEW-F"]
    assert "GONE" not in msgs  # retired once
