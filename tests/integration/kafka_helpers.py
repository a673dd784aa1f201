"""Helpers for integration tests: topics and workers of one test run, an independent producer and consumer."""

from __future__ import annotations

import asyncio
import itertools
import os
import time

import orjson
import pytest

from stream_app.cli.bench import WorkerProc
from stream_app.worker.broker import EmbeddedBroker
from stream_app.settings import Settings
from stream_app.core.windows import WindowSpec

_runs = itertools.count()



class Run:
    """One test's topics, settings and worker processes."""

    def __init__(self, broker: EmbeddedBroker, tmp_path, **overrides: object) -> None:
        name = f"t{os.getpid()}x{next(_runs)}"
        topics = {f"topic_{t}": f"{name}-{t}" for t in
                  ("clicks", "carts", "orders", "catalog", "forecasts", "alerts", "dead_letters",
                   "training_samples", "models")}
        self.settings = Settings(
            broker=broker.url, app_id=name, idle_timeout_s=2.0, tick_check_s=0.5, web_port=0,
            data_dir=str(tmp_path / "data"), **topics, **overrides,
        )
        self.bootstrap = broker.bootstrap
        self.log = tmp_path / "worker.log"
        self.workers: list[WorkerProc] = []

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRENDCAST_")}
        for k, v in self.settings.model_dump().items():
            if v is not None:
                env[f"TRENDCAST_{k.upper()}"] = str(v)
        return env

    def start_worker(self) -> WorkerProc:
        w = WorkerProc.start(self.env, self.log)
        self.workers.append(w)
        return w

    def topic(self, kind: str) -> str:
        return getattr(self.settings, f"topic_{kind}")

    @property
    def windows_changelog(self) -> str:
        return f"{self.settings.app_id}-sku-windows-v4-changelog"

    def logs(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def stop(self) -> None:
        for w in self.workers:
            w.stop()


def produce(bootstrap: str, messages: list[tuple[str, bytes | None, bytes | None]]) -> None:
    """Send ``(topic, key, value)`` messages in order with an independent aiokafka producer."""
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
        await p.start()
        try:
            futs = [await p.send(t, v, key=k) for t, k, v in messages]
            await asyncio.gather(*futs)
        finally:
            await p.stop()

    asyncio.run(run())


def read_topic(bootstrap: str, topic: str, *, idle_s: float = 1.5, max_s: float = 30) -> list:
    """Every message of ``topic`` from the beginning, read by an independent consumer (no group).

    Stops after ``idle_s`` without a new message: the embedded broker
    under-reports end offsets, so "caught up to the end" cannot be trusted.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run() -> list:
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
        await c.start()
        try:
            parts = c.partitions_for_topic(topic)
            deadline = time.monotonic() + 10
            while not parts and time.monotonic() < deadline:
                await c.topics()  # refreshes metadata
                parts = c.partitions_for_topic(topic)
                await asyncio.sleep(0.2)
            if not parts:
                return []
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            out, last, start = [], time.monotonic(), time.monotonic()
            while time.monotonic() - last < idle_s and time.monotonic() - start < max_s:
                batch = await c.getmany(timeout_ms=200)
                for records in batch.values():
                    out.extend(records)
                    last = time.monotonic()
            return out
        finally:
            await c.stop()

    return asyncio.run(run())


def latest_windows(run: Run) -> dict[str, dict]:
    """Each SKU's window totals, from the last value of its key in the windows changelog."""
    spec = WindowSpec(run.settings.history_days, run.settings.dedup_ids_per_sku)
    latest: dict[bytes, bytes] = {}
    for m in read_topic(run.bootstrap, run.windows_changelog):
        latest[m.key] = m.value
    return {k.decode(): spec.load(v).totals() for k, v in latest.items()}


def json_values(records) -> list[dict]:
    return [orjson.loads(r.value) for r in records]


def wait_for(pred, timeout: float, what: str, poll: float = 0.5, on_fail=lambda: ""):
    """Poll ``pred()`` until truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{on_fail()}")


def produce_ends(bootstrap: str, messages: list[tuple[str, bytes | None, bytes | None]]) -> dict[tuple[str, int], int]:
    """Send like :func:`produce`; returns each written partition's end offset (last offset + 1), from the acks."""
    from aiokafka import AIOKafkaProducer

    async def run() -> dict[tuple[str, int], int]:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
        await p.start()
        try:
            futs = [await p.send(t, v, key=k) for t, k, v in messages]
            ends: dict[tuple[str, int], int] = {}
            for md in await asyncio.gather(*futs):
                tp = (md.topic, md.partition)
                ends[tp] = max(ends.get(tp, 0), md.offset + 1)
            return ends
        finally:
            await p.stop()

    return asyncio.run(run())


def committed_offsets(bootstrap: str, group: str, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int | None]:
    """The consumer group's committed offsets, read by an independent client that joins nothing."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run() -> dict[tuple[str, int], int | None]:
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await c.start()
        try:
            return {(t, p): await c.committed(TopicPartition(t, p)) for t, p in tps}
        finally:
            await c.stop()

    return asyncio.run(run())
