"""Promoted checkpoints reach a running worker: read from the ``models`` topic, served from the next tick on.

Every worker reads the whole topic (one partition, no consumer group), from
its first record at start, so a restarted worker serves the newest promoted
model too. A record that does not decode or does not fit
(:mod:`models.checkpoint_codec`: another feature spec, damaged weights) is
refused with one WARNING line and ``trendcast_model_updates_total{outcome="refused"}``;
the serving model stays. A good one replaces the worker's scorer with one
around the new network (same device, text encoder and metrics; its own
stage-confidence map): a tick already running keeps the scorer it started
with, so one partition's day is forecast by one model, and every forecast
names the model that made it (``model.version``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from models.confidence import ConfidenceMap
from stream_app.core.scorer import Scorer, serving
from stream_app.settings import Settings

log = logging.getLogger("trendcast")
POLL_MS = 1000
RETRY_S = 5.0


def promoted_scorer(current: Scorer, value: bytes) -> Scorer:
    """A scorer like ``current`` around the network of the models record ``value`` (raises :class:`CheckpointError`)."""
    from models import checkpoint_codec
    from models.neural import NeuralForecaster

    model, meta = checkpoint_codec.decode(value)
    net = NeuralForecaster(model, meta["id"], device=current.device, meta=meta)
    return serving(current, net, ConfidenceMap.from_meta(meta))


class ModelWatcher:
    """Reads the models topic and hands each newly promoted scorer to ``serve`` (see the module doc)."""

    def __init__(self, settings: Settings, metrics: Any, current: Callable[[], Scorer],
                 serve: Callable[[Scorer], None], caught_up: Callable[[], None] = lambda: None) -> None:
        self.settings, self.metrics = settings, metrics
        self.current, self.serve, self.caught_up = current, serve, caught_up

    def load(self, values: list[bytes]) -> tuple[Scorer, dict] | None:
        """The scorer of the newest of ``values`` (in topic order) that loads and is not served yet, with its metadata.

        Changes nothing but the refusal count: the ones after it that do not load are refused.
        """
        from models import checkpoint_codec  # torch: imported once a model is promoted, not with the app
        from models.checkpoint import CheckpointError

        for value in reversed(values):
            try:
                meta = checkpoint_codec.read_header(value)[1]
                if meta.get("id") == self.current().model[1]:
                    return None  # already serving it (a restart reading its own promotion)
                return promoted_scorer(self.current(), value), meta
            except CheckpointError as exc:
                self.metrics.model_updates.labels("refused").inc()
                log.warning("models topic: a promoted checkpoint is refused, %s %s keeps serving: %s",
                            *self.current().model, exc)
        return None

    def apply(self, scorer: Scorer, meta: dict) -> None:
        """Serve ``scorer`` from the next tick on; the metrics and the log say so."""
        old = self.current().model
        self.serve(scorer)
        self.metrics.model_updates.labels("served").inc()
        self.metrics.model_info.labels(*old, scorer.device).set(0)
        self.metrics.model_info.labels(*scorer.model, scorer.device).set(1)
        retrained = meta.get("retrained", {})
        log.info("model %s now serves (parent %s, trained on %s; held-back days %s)", meta.get("id"),
                 meta.get("parent"), retrained.get("days", {}).get("trained"),
                 retrained.get("figures", {}).get("candidate"))

    async def run(self) -> None:
        """Follow the topic until cancelled; a consumer that fails is started again after a pause."""
        from aiokafka.errors import KafkaError

        while True:
            try:
                await self._follow()
            except (KafkaError, OSError) as exc:
                log.warning("models topic: reading stopped (%s); again in %.0f s", exc, RETRY_S)
                await asyncio.sleep(RETRY_S)

    async def _follow(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from stream_app.worker.security import aiokafka_kwargs

        s = self.settings
        c = AIOKafkaConsumer(bootstrap_servers=s.bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", max_partition_fetch_bytes=16 << 20,
                             fetch_max_bytes=64 << 20, **aiokafka_kwargs(s))
        try:
            await c.start()
            tp = TopicPartition(s.topic_models, 0)
            c.assign([tp])
            await c.seek_to_beginning(tp)
            caught = False
            while True:
                got = await c.getmany(tp, timeout_ms=POLL_MS)
                values = [r.value for r in got.get(tp, []) if r.value is not None]
                if values:
                    # Decoding a network is milliseconds; off the loop all the same. Served on the loop,
                    # between two ticks' starts (a tick takes the scorer when it starts).
                    found = await asyncio.to_thread(self.load, values)
                    if found is not None:
                        self.apply(*found)
                elif not caught:
                    caught = True  # a poll with nothing new: the newest promotion, if any, serves
                    self.caught_up()
        finally:
            await c.stop()
