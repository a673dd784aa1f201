"""The worker's reader of the models topic outlives a failure: it starts again and serves what was promoted.

Real parts: the embedded broker, aiokafka, a models record encoded as
``trendcast retrain`` writes one. The failure is a real one: the watcher's
first reader connects to an address where nothing listens; by the next
start (after ``RETRY_S``) the address is the broker's, as when a broker
comes back or a name resolves again.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
import torch
from prometheus_client import CollectorRegistry

from models import checkpoint_codec
from models.checkpoint import load_checkpoint
from models.neural import DEFAULT_CHECKPOINT
from stream_app.worker import model_updates
from stream_app.worker.metrics import Metrics
from stream_app.worker.kafka_io import ensure_topics
from stream_app.worker.model_updates import ModelWatcher
from stream_app.worker.retrain_job import publish_model
from stream_app.worker.runner import all_topics
from stream_app.worker.scoring import build_scorer

pytestmark = pytest.mark.integration


def promoted_record() -> tuple[str, bytes]:
    """A models record of the default network with one weight nudged: another model, another id."""
    model, meta = load_checkpoint(DEFAULT_CHECKPOINT)
    config = torch.load(DEFAULT_CHECKPOINT, map_location="cpu", weights_only=True)["config"]
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 0.01
    return checkpoint_codec.encode(model, config, {k: v for k, v in meta.items() if k not in ("id", "history")})


def test_a_failed_models_reader_is_started_again_and_the_promoted_model_serves(make_run, monkeypatch, caplog):
    run = make_run(forecaster="model")
    new_id, value = promoted_record()
    # as the worker creates its topics and `trendcast retrain` publishes
    asyncio.run(ensure_topics(run.bootstrap, all_topics(run.settings), compacted=[run.topic("models")]))
    asyncio.run(publish_model(run.settings, value))
    monkeypatch.setattr(model_updates, "RETRY_S", 0.5)
    metrics = Metrics.create(CollectorRegistry())
    serving = [build_scorer(run.settings)]
    assert serving[0].model[1] != new_id
    nowhere = run.settings.model_copy(update={"broker": "127.0.0.1:9"})  # the discard port: nothing answers
    watcher = ModelWatcher(nowhere, metrics, lambda: serving[-1], serving.append)

    async def scenario() -> None:
        task = asyncio.create_task(watcher.run())
        try:
            async with asyncio.timeout(60):
                while "models topic: reading stopped" not in caplog.text:
                    await asyncio.sleep(0.1)
                watcher.settings = run.settings  # the broker answers from the next start on
                while serving[-1].model[1] != new_id:
                    await asyncio.sleep(0.1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    with caplog.at_level(logging.WARNING, logger="trendcast"):
        asyncio.run(scenario())
    assert len(serving) == 2 and serving[-1].model[1] == new_id
    assert metrics.registry.get_sample_value("trendcast_model_updates_total", {"outcome": "served"}) == 1
