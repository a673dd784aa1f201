"""One retrain cycle against Kafka: read the training samples, warm-start the serving model, promote if better.

The serving model is the newest record of the ``models`` topic (a worker
switches to it between ticks), or, before any promotion, the checkpoint
the workers load from their settings. The samples are what workers
published to ``training-samples`` (:mod:`stream_app.core.samples`), their
text what the workers' embeddings table holds. The decision is
:func:`models.retraining.retrain`'s; a promoted candidate goes to the
``models`` topic as one record (:mod:`models.checkpoint_codec`, never a
pickle) with its parent's id, the days it learnt from, and the figures of
both networks on the held-back days. When the shipped checkpoint (the file
the workers load from their settings) beats a retrained serving network,
it goes to the topic again under its own id (a roll back, ``rolled_back``
in its meta).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from models import checkpoint_codec
from models.calibration_codec import RecordError
from models.checkpoint import CheckpointError
from models.interface import HORIZONS
from models.retraining import Decision, RetrainRules, retrain
from stream_app.core.samples import decode as decode_sample
from stream_app.data.stream_samples import SampleJoin
from stream_app.requests import BadRequest, iso
from stream_app.settings import Settings

log = logging.getLogger("trendcast")
MODEL_KEY = b"serving"  # the models topic is compacted: the newest promotion is what stays


@dataclass
class CycleResult:
    """What one cycle did: the decision (None: nothing to learn from), the serving and the new model ids."""

    decision: Decision | None
    serving_id: str
    promoted_id: str | None
    records: int
    rejected: int
    samples: int
    note: str = ""

    def summary(self) -> dict:
        """A JSON-able line for the log and the command's output."""
        d = self.decision
        return {"serving": self.serving_id, "promoted": self.promoted_id, "records_read": self.records,
                "records_rejected": self.rejected, "samples": self.samples,
                **({"reason": self.note} if d is None else {"reason": d.reason, "figures": d.figures, "days": d.days,
                                         "trained_on": d.trained_on})}


def embeddings_changelog(settings: Settings) -> str:
    """The workers' embeddings table's changelog topic (Faust names it ``<app id>-<table>-changelog``)."""
    from stream_app.worker.app import EMBEDDINGS_TABLE

    return f"{settings.app_id}-{EMBEDDINGS_TABLE}-changelog"


async def _read(settings: Settings, topic: str, partitions: int, apply) -> None:
    """Every record of ``topic`` so far, a batch at a time, to ``apply``; nothing when the topic does not exist."""
    from aiokafka import AIOKafkaConsumer

    from stream_app.worker.kafka_io import read_to_end
    from stream_app.worker.security import aiokafka_kwargs

    client = aiokafka_kwargs(settings)
    probe = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap, group_id=None, **client)
    await probe.start()
    try:
        if topic not in await probe.topics():  # no worker has run yet: asking for it by name might create it
            log.info("retrain: topic %s does not exist yet", topic)
            return
    finally:
        await probe.stop()
    await read_to_end(settings.bootstrap, [(topic, p) for p in range(partitions)], apply, client=client)


async def serving_model(settings: Settings, fallback_path: str | None):
    """``(network, config, meta)`` the workers serve: the newest promoted record, else the checkpoint file."""
    newest: list[bytes] = []
    await _read(settings, settings.topic_models, 1,
                lambda _tp, recs: newest.extend(r.value for r in recs if r.value is not None))
    for value in reversed(newest):
        try:
            model, meta = checkpoint_codec.decode(value)
            return model, checkpoint_codec.read_header(value)[0], meta
        except CheckpointError as exc:
            log.warning("models topic: a record is refused (%s); trying the one before it", exc)
    try:
        return checkpoint_file(settings, fallback_path)
    except CheckpointError as exc:
        raise BadRequest(str(exc)) from None


def checkpoint_file(settings: Settings, path: str | None):
    """``(network, config, meta)`` of the checkpoint file the fleet started from (``path``, the setting, the default)."""
    import torch

    from models.checkpoint import load_checkpoint
    from models.neural import DEFAULT_CHECKPOINT

    path = path or settings.model_path or str(DEFAULT_CHECKPOINT)
    model, meta = load_checkpoint(path)
    return model, torch.load(path, map_location="cpu", weights_only=True)["config"], meta


def record_day(key: bytes | None) -> int | None:
    """The forecast day a training-samples key names (``in:<day>:...``, ``out:<day>:...``); None if it names none."""
    parts = (key or b"").split(b":", 2)
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def chosen_days(days: list[int], rules: RetrainRules, seed: int = 0) -> set[int]:
    """The forecast days a cycle decodes: every day the rules train or judge on, and a replay draw of older ones.

    Memory: a record stays compressed (~190 bytes a SKU and day) until
    chosen; decoded, an input is ~1.4 KB. Older days are drawn whole, about
    ``replay_share`` as many as the recent ones, so the cycle holds what it
    trains on, not the topic's whole retention.
    """
    import numpy as np

    if not days:
        return set()
    recent_from = max(days) - rules.holdout_days - rules.recent_days - max(HORIZONS)
    recent = {d for d in days if d >= recent_from}
    older = sorted({d for d in days if d < recent_from})
    k = min(len(older), int(np.ceil(rules.replay_share * len(recent))))
    return recent | set(np.random.default_rng(seed).choice(older, size=k, replace=False).tolist() if k else [])


async def read_samples(settings: Settings, rules: RetrainRules = RetrainRules()
                       ) -> tuple[SampleJoin, dict[bytes, bytes], int, int]:
    """``(joined samples, embeddings by SKU, records read, records refused)`` from the topics.

    Records are kept compressed while the topic is read, and only those of
    :func:`chosen_days` (and any whose key names no day) are decoded.
    """
    if not settings.topic_training_samples:
        raise BadRequest("TRENDCAST_TOPIC_TRAINING_SAMPLES is empty: the workers publish no samples to learn from")
    join, counts = SampleJoin(), {"read": 0, "rejected": 0}
    raw: list[tuple[int | None, int, bytes]] = []

    def take(_tp, recs) -> None:
        for r in recs:
            counts["read"] += 1
            raw.append((record_day(r.key), r.offset, r.value or b""))

    await _read(settings, settings.topic_training_samples, settings.partitions, take)
    days = chosen_days(sorted({d for d, _, _ in raw if d is not None}), rules)
    for day, offset, value in raw:
        if day is not None and day not in days:
            continue
        try:
            join.add(decode_sample(value))
        except RecordError as exc:
            counts["rejected"] += 1
            if counts["rejected"] <= 3:
                log.warning("training-samples offset %d: record refused (%s)", offset, exc)
    raw.clear()  # the compressed copies: the chosen ones are decoded

    embeddings: dict[bytes, bytes] = {}

    def keep(_tp, recs) -> None:
        for r in recs:
            if r.value is None:
                embeddings.pop(r.key, None)
            else:
                embeddings[r.key] = r.value

    await _read(settings, embeddings_changelog(settings), settings.partitions, keep)
    return join, embeddings, counts["read"], counts["rejected"]


async def run_cycle(settings: Settings, rules: RetrainRules, *, model_path: str | None = None,
                    device: str = "cpu") -> CycleResult:
    """Read, retrain on ``device`` and (when the candidate wins) publish; see the module doc."""
    serving, config, meta = await serving_model(settings, model_path)
    try:  # the standing challenger once a retrained network serves (models.retraining.retrain)
        shipped, shipped_config, shipped_meta = checkpoint_file(settings, model_path)
    except (CheckpointError, OSError) as exc:
        log.warning("retrain: the shipped checkpoint does not load, no roll back this cycle: %s", exc)
        shipped = shipped_config = shipped_meta = None
    join, embeddings, read, rejected = await read_samples(settings, rules)
    try:
        samples = join.samples(embeddings)
    except ValueError as exc:
        log.info("retrain: nothing to learn from yet (%s)", exc)
        return CycleResult(None, meta["id"], None, read, rejected, 0, f"nothing to learn from yet: {exc}")
    try:
        decision = await asyncio.to_thread(retrain, serving, samples, rules, device, shipped)
    except ValueError as exc:
        log.info("retrain: %s", exc)
        return CycleResult(None, meta["id"], None, read, rejected, len(samples), str(exc))
    promoted = None
    if decision.promote:
        days = {k: [iso(d) for d in v] for k, v in decision.days.items()}
        at = int(time.time() * 1000)
        if shipped is not None and decision.candidate is shipped:  # a roll back: its own weights, id and meta
            new_meta = {**shipped_meta, "rolled_back": {"from": meta["id"], "days": days, "figures": decision.figures,
                                                        "promoted_at": at}}
            config = shipped_config
        else:
            new_meta = {k: v for k, v in meta.items() if k not in ("id", "history", "validation", "rolled_back")}
            new_meta.update({"parent": meta["id"], "retrained": {"days": days, "figures": decision.figures,
                                                                  "samples": decision.trained_on, "promoted_at": at}})
        promoted, value = checkpoint_codec.encode(decision.candidate, config, new_meta)
        await publish_model(settings, value)
    log.info("retrain: serving %s, candidate %s: %s", meta["id"], "promoted as " + promoted if promoted
             else "not promoted", decision.reason)
    return CycleResult(decision, meta["id"], promoted, read, rejected, len(samples))


async def publish_model(settings: Settings, value: bytes) -> None:
    """Write a models record and wait until the broker has it."""
    from stream_app.worker.kafka_io import Producer
    from stream_app.worker.security import aiokafka_kwargs

    async with Producer(settings.bootstrap, acks="all", max_request_size=8 << 20, **aiokafka_kwargs(settings)) as p:
        await p.send(settings.topic_models, value, key=MODEL_KEY)
