"""The lifecycle simulator: reproducible, ordered, true stages by the documented rule, scenarios, funnel."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter, defaultdict

import numpy as np
import orjson
import pytest

from schemas import validate
from stream_app.core.decode import KINDS, Event, decode, decode_catalog
from stream_app.sim import SCENARIOS, STAGES, Scenarios, Simulator, write_simulation
from stream_app.sim.bass import adoption_rate, stage_boundaries
from stream_app.sim.scenarios import EARLY_DECLINE, REGULAR, SEASONAL, SLOW_MOVER
from stream_app.sim.simulator import CART_LEAD_DAYS, CLICK_LEAD_DAYS, DAY_MS

START = 20_000 * DAY_MS  # 2024-10-04, a Friday
DEC_START = 20_058 * DAY_MS  # 2024-12-01


@pytest.fixture(scope="module")
def sim():
    return Simulator(n_skus=80, days=40, start_ms=START, seed=3)


@pytest.fixture(scope="module")
def events(sim):
    return list(sim.events())


def truth_matrix(sim: Simulator, field: str) -> np.ndarray:
    """``(days, n_skus)`` of one :class:`DayTruth` field."""
    return np.stack([getattr(sim.day_truth(d), field) for d in range(sim.days)])


def test_same_seed_same_everything_other_seed_differs(sim, events):
    again = Simulator(n_skus=80, days=40, start_ms=START, seed=3)
    assert list(again.events()) == events and list(sim.events()) == events
    assert again.catalog() == sim.catalog()
    assert [list(again.labels(d)) for d in range(40)] == [list(sim.labels(d)) for d in range(40)]
    other = Simulator(n_skus=80, days=40, start_ms=START, seed=4)
    assert [e for _, e in other.events()][:100] != [e for _, e in events][:100]


def test_events_ordered_valid_and_uniquely_identified(sim, events):
    ts = [e["ts"] for _, e in events]
    assert ts == sorted(ts) and START <= ts[0] and ts[-1] < START + 40 * DAY_MS
    for kind, e in events:
        assert type(decode(KINDS.index(kind), e["sku"].encode(), orjson.dumps(e))) is Event
    for kind, e in events[:3000]:
        validate(kind, e)
    assert len({e["event_id"] for _, e in events}) == len(events)
    launched = {r["sku"]: r["launched_at"] for r in sim.catalog()}
    assert all(e["ts"] >= launched[e["sku"]] for _, e in events)  # nothing sells before launch


def test_catalog_text_carries_signal(sim):
    cat = sim.catalog()
    for r in cat:
        validate("catalog", r)
        assert type(decode_catalog(r["sku"].encode(), orjson.dumps(r))) is dict
        assert r["category"] in r["description"]
    kinds = {s: k for s, k in zip(sim.skus, sim.cat.kind)}
    assert all("Christmas" in r["title"] for r in cat if kinds[r["sku"]] == SEASONAL)
    assert not any("Christmas" in r["title"] for r in cat if kinds[r["sku"]] != SEASONAL)
    assert all("Replacement" in r["description"] for r in cat if kinds[r["sku"]] == SLOW_MOVER)


def test_bass_stage_boundaries_are_the_inflection_points():
    p, q = 0.03, 0.4
    t1, peak, t2 = stage_boundaries(p, q)
    assert peak == pytest.approx(math.log(q / p) / (p + q))
    t = np.linspace(0.01, 20, 200_001)
    f = adoption_rate(t, p, q)
    assert t[np.argmax(f)] == pytest.approx(peak, abs=1e-3)  # the rate peaks at T*
    curvature = np.diff(f, 2)
    flips = t[1:-1][np.flatnonzero(np.diff(np.sign(curvature)) != 0)]
    assert flips == pytest.approx([t1, t2], abs=1e-3)  # f'' changes sign at T1 and T2
    assert stage_boundaries(0.3, 0.2)[0] == 0.0  # q < p: no introduction, sales fall from launch


def test_labels_follow_the_documented_stage_rule(sim):
    c = sim.cat
    t1, peak, t2 = stage_boundaries(c.p, c.q)
    stages = defaultdict(list)
    for day in range(sim.days):
        for row in sim.labels(day):
            i = sim.skus.index(row["sku"])
            launch = c.launch_day[i]
            age = ((max(day, launch) + day + 1) / 2 - launch) / 7.0  # middle of the day's part on sale, weeks
            if age >= c.cut_age[i]:
                want = "decline"
            else:
                want = STAGES[int(age >= t1[i]) + int(age >= peak[i]) + int(age >= t2[i])]
            assert row["stage"] == want, (row, age, t1[i], peak[i], t2[i])
            stages[row["sku"]].append(STAGES.index(row["stage"]))
    assert all(s == sorted(s) for s in stages.values())  # stages only move forward
    assert set(STAGES) <= {STAGES[x] for s in stages.values() for x in s}


def test_labels_only_from_launch_and_written_to_csv(tmp_path):
    s = Simulator(n_skus=12, days=5, start_ms=START, seed=2)
    counts = write_simulation(s, tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "labels.csv")))
    assert len(rows) == counts["labels"] > 0
    launched = {r["sku"]: r["launched_at"] for r in s.catalog()}
    for r in rows:
        assert (int(r["day"]) + 1) * DAY_MS > launched[r["sku"]] and r["stage"] in STAGES
        assert r["date"] == str(np.datetime64(int(r["day"]), "D"))
    assert json.loads((tmp_path / "simulation.json").read_text())["n_skus"] == 12
    lines = {k: (tmp_path / f"{k}.jsonl").read_bytes().count(b"\n") for k in ("clicks", "carts", "orders", "catalog")}
    assert lines == {k: counts[k] for k in lines}
    first = (tmp_path / "orders.jsonl").read_bytes()
    write_simulation(Simulator(n_skus=12, days=5, start_ms=START, seed=2), tmp_path / "again")
    assert (tmp_path / "again" / "orders.jsonl").read_bytes() == first  # byte for byte reproducible


def test_promotion_doubles_demand_and_cuts_price():
    with_promo = Simulator(n_skus=60, days=30, start_ms=START, seed=5)
    without = Simulator(n_skus=60, days=30, start_ms=START, seed=5,
                        scenarios=Scenarios(enabled=frozenset(SCENARIOS) - {"promotion"}))
    promo = truth_matrix(with_promo, "promo")
    assert promo.any() and not truth_matrix(without, "promo").any()
    ratio = truth_matrix(with_promo, "orders")[promo] / truth_matrix(without, "orders")[promo]
    assert ratio == pytest.approx(2.0)
    assert np.array_equal(truth_matrix(with_promo, "orders")[~promo], truth_matrix(without, "orders")[~promo])
    assert (promo.sum(axis=0) % 7 == 0).all() and promo.sum(axis=0).max() == 7  # one week each
    list_price = {r["sku"]: r["price"] for r in with_promo.catalog()}
    for kind, e in with_promo.events():
        if kind == "orders":
            on = promo[(e["ts"] - START) // DAY_MS, with_promo.skus.index(e["sku"])]
            assert e["unit_price"] == round(list_price[e["sku"]] * (0.8 if on else 1.0), 2)


def test_level_shift_moves_one_category_from_its_day():
    s = Simulator(n_skus=80, days=30, start_ms=START, seed=6, scenarios=Scenarios(enabled=frozenset({"level_shift"})))
    base = Simulator(n_skus=80, days=30, start_ms=START, seed=6, scenarios=Scenarios.parse("none"))
    ratio = np.divide(truth_matrix(s, "orders"), truth_matrix(base, "orders"),
                      out=np.ones((30, 80)), where=truth_matrix(base, "orders") > 0)
    in_cat = s.cat.category == s.shift_category
    assert s.shift_day == 18 and in_cat.any()
    assert ratio[s.shift_day:, in_cat] == pytest.approx(s.shift_factor)
    assert ratio[: s.shift_day] == pytest.approx(1.0) and ratio[:, ~in_cat] == pytest.approx(1.0)


def test_early_decline_and_seasonal_peak_in_december():
    s = Simulator(n_skus=100, days=120, start_ms=DEC_START - 60 * DAY_MS, seed=8)
    orders, stage = truth_matrix(s, "orders"), truth_matrix(s, "stage")
    for i in np.flatnonzero(s.cat.kind == SEASONAL):
        peak_day = (s.start_ms // DAY_MS + int(np.argmax(orders[:, i]))) - DEC_START // DAY_MS
        assert 0 <= peak_day <= 24, peak_day  # the peak falls in December before Christmas
        after = np.arange(120) >= (DEC_START // DAY_MS + 25 - s.start_ms // DAY_MS)
        assert (stage[after, i] == STAGES.index("decline")).all()
    for i in np.flatnonzero(s.cat.kind == EARLY_DECLINE):
        t1, peak, _ = stage_boundaries(s.cat.p[i], s.cat.q[i])
        assert t1 <= s.cat.cut_age[i] <= peak  # the decline starts during growth
        age = np.linspace(s.cat.cut_age[i], s.cat.cut_age[i] + 8, 50)
        curve = np.array([s.lifecycle(np.full(100, a))[i] for a in age])
        assert (np.diff(curve) < 0).all()


def test_slow_movers_are_intermittent():
    s = Simulator(n_skus=200, days=60, start_ms=START, seed=9)
    sold = Counter((e["sku"], e["ts"] // DAY_MS) for k, e in s.events() if k == "orders")
    live = truth_matrix(s, "stage") >= 0

    def zero_share(kind: int) -> float:
        idx = np.flatnonzero(s.cat.kind == kind)
        days = [(s.skus[i], s.start_ms // DAY_MS + d) for i in idx for d in np.flatnonzero(live[:, i])]
        return sum(sold[x] == 0 for x in days) / len(days)

    # Regular SKUs include old ones deep in decline, which sell rarely too.
    assert zero_share(SLOW_MOVER) > 0.85 and zero_share(REGULAR) < zero_share(SLOW_MOVER) - 0.25


def test_scenarios_none_is_plain_bass():
    s = Simulator(n_skus=50, days=20, start_ms=START, seed=1, scenarios=Scenarios.parse("none"))
    assert (s.cat.kind == REGULAR).all() and (s.promo_start < 0).all() and s.shift_category == -1
    assert np.isinf(s.cat.cut_age).all()


def test_funnel_ratios_and_clicks_and_carts_lead_orders():
    s = Simulator(n_skus=150, days=120, start_ms=START, seed=4, max_age_days=0,
                  scenarios=Scenarios.parse("none"))
    n = Counter(k if k != "carts" else e["action"] for k, e in s.events())
    assert 15 < n["clicks"] / n["orders"] < 27 and 2.3 < n["add"] / n["orders"] < 3.7
    assert 0.15 < n["remove"] / n["add"] < 0.25
    def weekly_sums(x: np.ndarray) -> np.ndarray:  # 7-day moving sums: no weekday pattern left
        c = np.cumsum(x, axis=0)
        return c[7:] - c[:-7]

    orders = weekly_sums(truth_matrix(s, "orders"))

    def lead(field: str) -> float:
        """Median over SKUs of the lag (days) at which the field best matches later orders."""
        x = weekly_sums(truth_matrix(s, field))
        n = len(x)
        score = [[np.corrcoef(x[: n - k, i], orders[k:, i])[0, 1] for k in range(8)] for i in range(150)]
        return float(np.median(np.argmax(np.nan_to_num(score, nan=-1), axis=1)))

    # Launch days cut the front of the shifted curves, so the best lag can fall short of the lead.
    assert CART_LEAD_DAYS <= lead("adds") < lead("clicks") <= CLICK_LEAD_DAYS
    # And in the events themselves: clicks come earlier in a SKU's life than its orders.
    first = defaultdict(dict)
    for kind, e in s.events():
        first[e["sku"]].setdefault(kind, []).append(e["ts"])
    gaps = [np.mean(k["orders"]) - np.mean(k["clicks"]) for k in first.values() if len(k.get("orders", ())) > 50]
    assert len(gaps) > 30 and np.median(gaps) > DAY_MS


@pytest.mark.parametrize("kwargs", [dict(n_skus=0), dict(days=0), dict(start_ms=START + 5), dict(orders_per_sku=0)])
def test_bad_arguments(kwargs):
    args = dict(n_skus=5, days=5, start_ms=START, seed=1) | kwargs
    with pytest.raises(ValueError):
        Simulator(**args)


def test_unknown_scenario_is_refused():
    with pytest.raises(ValueError, match="unknown scenarios"):
        Scenarios.parse("promotion,teleport")
    assert Scenarios.parse("promotion, early-decline").enabled == {"promotion", "early_decline"}


def test_cut_days_are_the_first_days_of_a_cut_decline_and_are_recorded(tmp_path):
    s = Simulator(n_skus=100, days=120, start_ms=DEC_START - 60 * DAY_MS, seed=8)
    stage = truth_matrix(s, "stage")
    cut = s.cut_days()
    decline = STAGES.index("decline")
    assert np.isfinite(s.cat.cut_age[cut >= 0]).all() and (cut >= 0).sum() > 5
    for i in np.flatnonzero(cut >= 0):
        assert stage[cut[i], i] == decline
        if s.cat.kind[i] == EARLY_DECLINE and cut[i] > 0:
            assert stage[cut[i] - 1, i] != decline  # cut during growth: the day before is not decline yet
    write_simulation(s, tmp_path)
    params = json.loads((tmp_path / "simulation.json").read_text())
    early = {sku: int(d) for sku, d, k in zip(s.skus, cut, s.cat.kind) if d >= 0 and k == EARLY_DECLINE}
    assert params["early_declines"] == early and early
    assert set(params["seasonal_declines"]) == {sku for sku, d, k in zip(s.skus, cut, s.cat.kind)
                                                if d >= 0 and k == SEASONAL}
    assert params["promotion_days"] == 7


def test_conversion_shift_multiplies_the_funnel_not_the_orders_and_is_not_in_all():
    assert "conversion_shift" not in Scenarios.parse("all").enabled
    plain = Simulator(n_skus=50, days=100, start_ms=START, seed=9, scenarios=Scenarios.parse("promotion"))
    shifted = Simulator(n_skus=50, days=100, start_ms=START, seed=9, scenarios=Scenarios.parse("promotion,conversion_shift"))
    assert shifted.conversion_day == 60 and shifted.conversion_factor == 3.0
    for day in (59, 60, 80):
        a, b = plain.day_truth(day), shifted.day_truth(day)
        factor = 3.0 if day >= 60 else 1.0
        np.testing.assert_allclose(b.orders, a.orders)  # the same draws: the runs differ only in the funnel
        np.testing.assert_allclose(b.clicks, a.clicks * factor)
        np.testing.assert_allclose(b.adds, a.adds * factor)
