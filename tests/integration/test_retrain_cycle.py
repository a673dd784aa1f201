"""A retrain cycle end to end on the embedded broker.

The worker publishes training samples; ``trendcast retrain`` (a process of
its own) learns from them, promotes a candidate to the models topic or
refuses it; the running worker serves the promoted model from its next
tick on, and its forecasts say so; a damaged record on the models topic
leaves it serving, and one on the training-samples topic is counted and
skipped; a retrained network worse than the shipped checkpoint is rolled
back to it.
"""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys

import orjson
import pytest
import torch
from kafka_helpers import produce, read_topic, wait_for

from models import checkpoint_codec
from models.checkpoint import load_checkpoint
from models.neural import DEFAULT_CHECKPOINT, load_forecaster
from stream_app.core.samples import INPUTS, OUTCOMES, decode
from stream_app.core.windows import DAY_MS
from stream_app.data.eventfiles import event_files, merged
from stream_app.sim import Simulator, write_simulation

pytestmark = pytest.mark.integration

START = 20_000
DAYS = 50
FIRST_PART = 42  # days sent before the retrain


def retrain(run, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "stream_app.cli", "retrain", *args], env=run.env,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def samples(run) -> list:
    return [decode(r.value) for r in read_topic(run.bootstrap, run.topic("training_samples"), idle_s=1.0)]


def test_samples_retrain_promote_and_serve(make_run, tmp_path):
    run = make_run()
    folder = tmp_path / "events"
    write_simulation(Simulator(n_skus=40, days=DAYS, start_ms=START * DAY_MS, seed=4), folder)
    topic = {k: run.topic(k) for k in ("clicks", "carts", "orders", "catalog")}
    events = list(merged(event_files(folder).values()))
    cut = (START + FIRST_PART) * DAY_MS
    early = [e for e in events if e[1].get("ts", 0) < cut]
    late = [e for e in events if e[1].get("ts", 0) >= cut]
    run.start_worker()
    produce(run.bootstrap, [(topic[k], v["sku"].encode(), orjson.dumps(v)) for k, v in early])

    # Inputs when forecasts are made, outcomes as horizons close: a week of 7-day outcomes and more.
    def a_month_of_outcomes():
        got = samples(run)
        week = [r for r in got if r.kind == OUTCOMES and r.horizon == 7]
        return got if week and max(r.day for r in week) - min(r.day for r in week) >= 20 else None

    got = wait_for(a_month_of_outcomes, 120, "the worker to publish a month of 7-day outcomes", on_fail=run.logs)
    inputs = [r for r in got if r.kind == INPUTS]
    assert inputs and all(r.history.shape[1:] == (6, 56) for r in inputs)
    made = {(k, r.day) for r in inputs for k in r.keys}
    # Every outcome belongs to a forecast whose input was published.
    assert all((k, r.day) in made for r in got if r.kind == OUTCOMES for k in r.keys)

    serving = load_forecaster(DEFAULT_CHECKPOINT).version
    # A damaged record among the samples, on the newest day (a day every cycle reads), is refused and counted;
    # the cycle learns from the rest.
    newest = max(r.day for r in got)
    produce(run.bootstrap, [(run.topic("training_samples"), f"in:{newest}:damaged".encode(), b"not a sample")])
    # A candidate must be 99% better to be promoted: it is not, and nothing is written.
    refused = retrain(run, "--margin", "0.99")
    assert refused["serving"] == serving and refused["promoted"] is None and refused["samples"] > 0
    assert refused["records_rejected"] == 1 and refused["records_read"] > len(got)
    assert "is not 99% below" in refused["reason"]
    assert read_topic(run.bootstrap, run.topic("models"), idle_s=1.0) == []

    # Promoted whatever its figures (a margin of -100%): one record, the candidate, its parent the default.
    promoted = retrain(run, "--margin", "-1", "--coverage-slack", "1", "--newest-slack", "100")
    new_id = promoted["promoted"]
    assert new_id and new_id != serving
    records = read_topic(run.bootstrap, run.topic("models"), idle_s=1.0)
    assert len(records) == 1
    _, meta = checkpoint_codec.decode(records[0].value)
    assert meta["id"] == new_id and meta["parent"] == serving
    assert meta["retrained"]["figures"] == promoted["figures"]

    # The running worker serves it: the forecasts of the days that close from now on carry its id.
    wait_for(lambda: f"model {new_id} now serves" in run.logs(), 30, "the worker to take the promoted model",
             on_fail=run.logs)
    third = len(late) // 3
    produce(run.bootstrap, [(topic[k], v["sku"].encode(), orjson.dumps(v)) for k, v in late[:third]])

    def versions_after(day_ms: int) -> set:
        msgs = [orjson.loads(r.value) for r in read_topic(run.bootstrap, run.topic("forecasts"), idle_s=1.0)]
        return {m["model"]["version"] for m in msgs if m["as_of"] > day_ms}

    wait_for(lambda: new_id in versions_after(cut), 60, "forecasts by the promoted model", on_fail=run.logs)

    # A damaged record is refused; the promoted model keeps serving.
    produce(run.bootstrap, [(run.topic("models"), b"serving", b"TCKP\x05\x00\x00\x00{not json")])
    wait_for(lambda: "a promoted checkpoint is refused" in run.logs(), 30, "the worker to refuse the record",
             on_fail=run.logs)
    newest = max(orjson.loads(r.value)["as_of"] for r in read_topic(run.bootstrap, run.topic("forecasts")))
    produce(run.bootstrap, [(topic[k], v["sku"].encode(), orjson.dumps(v)) for k, v in late[third: 2 * third]])
    wait_for(lambda: versions_after(newest) == {new_id}, 60, "forecasts after the refused record",
             on_fail=run.logs)

    # A worker killed and started again reads the models topic before its first tick: from its first
    # forecast on it serves the promoted model, not the checkpoint it was configured with.
    run.workers[0].stop(signal.SIGKILL)
    newest = max(orjson.loads(r.value)["as_of"] for r in read_topic(run.bootstrap, run.topic("forecasts")))
    run.start_worker()
    produce(run.bootstrap, [(topic[k], v["sku"].encode(), orjson.dumps(v)) for k, v in late[2 * third:]])
    wait_for(lambda: versions_after(newest), 90, "forecasts of the restarted worker", on_fail=run.logs)
    assert versions_after(newest) == {new_id}
    assert run.log.read_text(errors="replace").count(f"model {new_id} now serves") == 2  # once per process

    # A retrained network gone wrong serves (a noised copy of the shipped weights, published as a promotion
    # would be): the next cycle finds the shipped checkpoint better and rolls back to it, under its own id.
    shipped, shipped_meta = load_checkpoint(DEFAULT_CHECKPOINT)
    bad = copy.deepcopy(shipped)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in bad.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5 * (p.std() if p.numel() > 1 else 1.0))
    config = torch.load(DEFAULT_CHECKPOINT, map_location="cpu", weights_only=True)["config"]
    bad_id, value = checkpoint_codec.encode(bad, config, {"parent": new_id})
    produce(run.bootstrap, [(run.topic("models"), b"serving", value)])
    wait_for(lambda: f"model {bad_id} now serves" in run.logs(), 30, "the worker to take the bad model",
             on_fail=run.logs)
    back = retrain(run, "--epochs", "1", "--lr", "1e-7", "--newest-slack", "100")
    assert back["serving"] == bad_id and back["promoted"] == serving, back
    assert back["reason"].startswith("rolled back to the shipped checkpoint")
    _, meta = checkpoint_codec.decode(read_topic(run.bootstrap, run.topic("models"), idle_s=1.0)[-1].value)
    assert meta["id"] == serving and meta["rolled_back"]["from"] == bad_id
    assert meta["stage_confidence"] == shipped_meta["stage_confidence"]  # its own record, its confidence map too
    wait_for(lambda: f"model {serving} now serves" in run.logs(), 30, "the worker to serve the shipped model again",
             on_fail=run.logs)
