"""The example restock bot receives the worker's stage alerts end to end and decides on each."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest
from kafka_helpers import produce, read_topic, wait_for

from schemas import validate
from stream_app.data.eventfiles import event_files, merged
from stream_app.sim import Simulator, write_simulation
from stream_app.core.windows import DAY_MS

pytestmark = pytest.mark.integration

BOT = Path(__file__).parents[2] / "examples" / "restock_bot.py"


def load_bot():
    spec = importlib.util.spec_from_file_location("restock_bot", BOT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_bot_decides_on_every_alert_the_worker_publishes(make_run, tmp_path):
    run = make_run(topic_inventory=f"inv{os.getpid()}x{tmp_path.name[-12:]}", low_cover_days=7.0, service_level=0.9)
    folder = tmp_path / "events"
    write_simulation(Simulator(n_skus=30, days=45, start_ms=20_000 * DAY_MS, seed=3), folder)
    topic = {k: run.topic(k) for k in ("clicks", "carts", "orders", "catalog")}
    events = list(merged(event_files(folder).values()))
    skus = sorted({v["sku"] for _, v in events})
    # Every SKU has a stock count of 3 units from the start: any SKU the worker sees growing is short.
    stock = [(run.settings.topic_inventory, s.encode(), orjson.dumps({"schema_version": 1, "sku": s, "on_hand": 3,
                                                                      "ts": 20_000 * DAY_MS})) for s in skus]
    # A bad count goes to the dead letters with its reason; the worker goes on.
    stock.append((run.settings.topic_inventory, b"S-bad", b'{"sku": "S-bad", "on_hand": -4, "ts": 1}'))
    run.start_worker()
    produce(run.bootstrap, stock)
    # The counts are in before the first day closes (a separate topic, consumed at its own pace).
    counts = f"{run.settings.app_id}-sku-inventory-v1-changelog"
    wait_for(lambda: {r.key.decode() for r in read_topic(run.bootstrap, counts, idle_s=0.5)} >= set(skus), 60,
             "the worker to store every stock count", on_fail=run.logs)
    produce(run.bootstrap, [(topic[k], v["sku"].encode(), orjson.dumps(v)) for k, v in events])
    wait_for(lambda: len(read_topic(run.bootstrap, run.topic("alerts"), idle_s=1.0)) >= 5, 90,
             "the worker to publish stage alerts", on_fail=run.logs)
    alerts = [orjson.loads(r.value) for r in read_topic(run.bootstrap, run.topic("alerts"))]
    for a in alerts:
        validate("stage-alerts", a)
        assert a["inventory"]["on_hand"] == 3.0 and a["inventory"]["on_hand_ts"] == 20_000 * DAY_MS
        assert a["inventory"]["service_level"] == 0.9 and a["lead_time"]["days"] == 7
    low = [a for a in alerts if a["kind"] == "low_cover"]
    assert low, "no growing SKU ran short"
    for a in low:
        assert a["stage"] == a["previous_stage"] == "growth" and a["inventory"]["days_of_cover"] < 7.0
    assert len({a["sku"] for a in low}) == len(low)  # once per shortage, not every day
    dead = [orjson.loads(r.value) for r in read_topic(run.bootstrap, run.topic("dead_letters"))]
    bad_counts = [d for d in dead if d["source_topic"] == run.settings.topic_inventory]
    assert [(d["key"], d["reason"]["code"]) for d in bad_counts] == [("S-bad", "bad_value")]

    env = {**os.environ, "TRENDCAST_BROKER": run.settings.broker}
    out = subprocess.run(
        [sys.executable, str(BOT), "--topic", run.topic("alerts"), "--group", "bot-test",
         "--from-beginning", "--max", str(len(alerts))],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    decide = load_bot().decide
    # The worker may still be publishing while the bot reads, and partitions interleave differently for
    # each consumer: the bot's first N lines are decisions on N of the alerts published by the time it ends.
    published = [orjson.loads(r.value) for r in read_topic(run.bootstrap, run.topic("alerts"))]
    assert len(lines) == len(alerts)
    assert not Counter(lines) - Counter(decide(a) for a in published)
    assert not Counter(line.split(":")[0] for line in lines) - Counter(a["sku"] for a in published)


def test_decisions_follow_stage_and_stock():
    decide = load_bot().decide
    base = {"sku": "S1", "previous_stage": "growth", "confidence": 0.8, "lead_time": {"days": 7, "p50": 40.0, "p90": 70.0}}
    assert "STOP reordering" in decide({**base, "stage": "decline"})
    assert "RAISE order-up-to level to 70 units" in decide({**base, "previous_stage": "introduction", "stage": "growth"})
    assert "INITIAL ORDER 70 units" in decide({**base, "previous_stage": None, "stage": "introduction"})
    assert "STEADY replenishment: 40 units" in decide({**base, "stage": "maturity"})
    low = {**base, "stage": "growth", "inventory": {"on_hand": 10, "days_of_cover": 1.75, "reorder_qty": 65}}
    assert "REORDER NOW 65 units: 1.8 days of cover < 7-day lead time" in decide(low)
    short = {**low, "kind": "low_cover", "previous_stage": "growth", "inventory": {**low["inventory"], "days_of_cover": 4.0}}
    assert decide(short) == "S1: low cover while in growth (80%): REORDER NOW 65 units: 4.0 days of cover, demand growing"


def test_without_a_broker_setting_the_bot_says_what_to_set():
    env = {k: v for k, v in os.environ.items() if k != "TRENDCAST_BROKER"}
    out = subprocess.run([sys.executable, str(BOT)], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert out.stderr.strip() == "restock_bot: set TRENDCAST_BROKER=kafka://host:port (the broker the worker uses)"
