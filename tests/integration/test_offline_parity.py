"""``trendcast forecast`` publishes what a worker publishes: the same messages, ids and numbers.

A simulation (catalog first, then events) is replayed into a real worker
running the shipped model, and the same files go through the worker's day
loop offline (:mod:`stream_app.data.offline_worker`, what ``trendcast forecast``
and ``trendcast evaluate``'s published stream use). Every forecast of every
closed day must be equal, message for message.
"""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest
from kafka_helpers import json_values, produce, read_topic, wait_for

from stream_app.data.eventfiles import event_files, merged
from stream_app.data.offline_worker import published_forecasts
from stream_app.worker.scoring import build_scorer
from stream_app.data.replay import EventFiles
from stream_app.sim import Simulator, write_simulation

pytestmark = pytest.mark.integration

DAY = 86_400_000


def test_the_offline_day_loop_publishes_what_the_worker_publishes(make_run, tmp_path):
    folder = tmp_path / "sim"
    write_simulation(Simulator(n_skus=40, days=30, start_ms=20_300 * DAY, seed=5), folder)
    rows = list(merged(event_files(folder).values()))
    catalog = [v for k, v in rows if k == "catalog"]
    last_day = max(v["ts"] for k, v in rows if k != "catalog") // DAY
    run = make_run()
    worker = run.start_worker()
    worker.wait(lambda m: m.get("trendcast_ready", 0) == 1, 90)
    # The catalog first, embedded before any event: the forecasts read the same texts offline.
    produce(run.bootstrap, [(run.topic("catalog"), v["sku"].encode(), orjson.dumps(v)) for v in catalog])
    worker.wait(lambda m: m.get("trendcast_text_embeddings_total", 0) >= len(catalog), 120)
    produce(run.bootstrap, [(run.topic(k), v["sku"].encode(), orjson.dumps(v)) for k, v in rows if k != "catalog"])

    closed = set(range(20_300, last_day - 1))
    offline = published_forecasts(run.settings, EventFiles(folder).rows(), closed, scorer=build_scorer(run.settings))
    want = {(m["sku"], m["as_of"]): m for day in closed for m in offline.get(day, [])}
    assert len(want) > 500

    def published():
        got = {(m["sku"], m["as_of"]): m for m in json_values(read_topic(run.bootstrap, run.topic("forecasts")))}
        return got if set(want) <= set(got) else None

    def missing() -> str:
        got = {(m["sku"], m["as_of"]) for m in json_values(read_topic(run.bootstrap, run.topic("forecasts")))}
        lost = sorted(set(want) - got)
        return f"{len(lost)} of {len(want)} offline forecasts not published, e.g. {lost[:3]}; " \
               f"published but not offline: {sorted(got - set(want))[:3]}"

    got = wait_for(published, 120, "the worker's forecasts of every closed day", on_fail=missing)
    assert json_values(read_topic(run.bootstrap, run.topic("dead_letters"))) == []
    diff = [k for k in want if got[k] != want[k]]
    assert not diff, f"{len(diff)} of {len(want)} differ, e.g. {diff[0]}: worker {got[diff[0]]} offline {want[diff[0]]}"


def test_trendcast_forecast_writes_the_as_of_days_and_refuses_bad_arguments(tmp_path):
    folder = tmp_path / "sim"
    write_simulation(Simulator(n_skus=12, days=20, start_ms=20_300 * DAY, seed=2), folder)
    out = tmp_path / "f.jsonl"
    cmd = [sys.executable, "-m", "stream_app.cli", "forecast", "--data", str(folder), "--source", "events",
           "--as-of", "2025-08-15,2025-08-10", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    msgs = [orjson.loads(line) for line in out.read_text().splitlines()]
    assert {m["as_of"] for m in msgs} == {20_310 * DAY, 20_315 * DAY}
    assert len({m["id"] for m in msgs}) == len(msgs)
    bad = subprocess.run(cmd[:-4] + ["--as-of", "2025-02-30", "--out", str(out)], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "--as-of" in bad.stderr
