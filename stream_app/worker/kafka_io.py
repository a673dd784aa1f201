"""Thin async helpers around aiokafka (no Faust): topics, a batching producer, file replay, tailing.

Tansu, the embedded broker, under-reports a partition's high watermark, so
nothing here trusts end offsets to mean "caught up": readers stop on a limit
or after a quiet period instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError, for_code

Record = tuple[str | None, object, int, int]  # key, value (JSON or raw bytes), partition, offset
_TOPIC_EXISTS = 36  # Kafka error code TOPIC_ALREADY_EXISTS


class KafkaUnavailable(RuntimeError):
    """Kafka cannot be reached or refused a request; ``str()`` is one line for the CLI."""


def _unavailable(bootstrap: str, exc: BaseException) -> KafkaUnavailable:
    text = str(exc) or type(exc).__name__
    # aiokafka's bootstrap failure lists address tuples; the address is already in our line.
    reason = "no broker answered" if "Unable to bootstrap" in text else text
    return KafkaUnavailable(f"cannot reach Kafka at {bootstrap}: {reason}; "
                            "check that the broker runs and TRENDCAST_BROKER points at it")


async def ensure_topics(bootstrap: str, topics: Mapping[str, int], *, compacted: Iterable[str] = (),
                        replication: int = 1, wait_s: float = 10.0, client: Mapping | None = None) -> None:
    """Create the missing ones of ``topics`` (name -> partitions); existing topics are left as they are.

    Names in ``compacted`` get ``cleanup.policy=compact``. Returns once every
    topic shows up in the cluster metadata (at most ``wait_s`` seconds), so a
    producer that starts next cannot auto-create it with the broker's default
    partition count. ``client``: extra aiokafka arguments (security).
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    compacted = set(compacted)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000, **(client or {}))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        new = [NewTopic(name, n, replication, topic_configs={"cleanup.policy": "compact"} if name in compacted else {})
               for name, n in topics.items() if name not in existing]
        if new:
            response = await admin.create_topics(new)
            for name, code, *rest in response.topic_errors:
                if code not in (0, _TOPIC_EXISTS):  # "exists": another process was quicker
                    raise KafkaUnavailable(f"cannot create topic {name!r} at {bootstrap}: "
                                           f"{for_code(code).__name__} {rest[0] if rest and rest[0] else ''}".rstrip())
        deadline = time.monotonic() + wait_s
        while not set(topics) <= set(await admin.list_topics()):
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"topics {sorted(set(topics) - set(await admin.list_topics()))} "
                                       f"did not appear at {bootstrap} within {wait_s:.0f} s")
            await asyncio.sleep(0.1)
    except (KafkaConnectionError, KafkaTimeoutError, OSError) as exc:
        raise _unavailable(bootstrap, exc) from exc
    finally:
        try:
            await admin.close()
        except Exception:  # noqa: BLE001 - closing a client that never connected
            pass


class Producer:
    """An async context manager around :class:`AIOKafkaProducer`, tuned for throughput.

    :meth:`send` only queues a message; :meth:`flush` waits until every queued
    message is acknowledged and raises the first delivery error. ``acks=1``
    suits the single embedded broker; pass ``acks="all"`` for real clusters.
    """

    def __init__(self, bootstrap: str, *, acks: int | str = 1, linger_ms: int = 20,
                 max_batch_size: int = 512 * 1024, max_pending: int = 100_000, **kwargs: object) -> None:
        self.bootstrap = bootstrap
        self.sent = 0
        # Futures are checked in chunks so a long replay holds bounded memory.
        self._max_pending = max_pending
        self._pending: list[asyncio.Future] = []
        self._kwargs = dict(bootstrap_servers=bootstrap, acks=acks, linger_ms=linger_ms,
                            max_batch_size=max_batch_size, **kwargs)
        self._p: AIOKafkaProducer | None = None

    async def __aenter__(self) -> "Producer":
        self._p = AIOKafkaProducer(**self._kwargs)
        try:
            await self._p.start()
        except (KafkaError, OSError) as exc:
            await self._p.stop()
            raise _unavailable(self.bootstrap, exc) from exc
        return self

    async def __aexit__(self, exc_type, *exc: object) -> None:
        try:
            if exc_type is None:
                await self.flush()
        finally:
            await self._p.stop()

    async def send(self, topic: str, value: bytes | None, key: bytes | None = None) -> None:
        """Queue one message (waits only when the producer's buffer is full)."""
        self._pending.append(await self._p.send(topic, value, key=key))
        self.sent += 1
        if len(self._pending) >= self._max_pending:
            await self.flush()

    async def flush(self) -> None:
        """Wait until every queued message is acknowledged; raises the first delivery error."""
        await self._p.flush()
        pending, self._pending = self._pending, []
        try:
            await asyncio.gather(*pending)
        except (KafkaConnectionError, KafkaTimeoutError) as exc:
            raise _unavailable(self.bootstrap, exc) from exc


def _key_of(value: object) -> bytes | None:
    sku = value.get("sku") if isinstance(value, dict) else None
    return sku.encode() if isinstance(sku, str) and sku else None


def _route(line: bytes, topic_for: Callable[[dict], str] | None,
           default_topic: str | None) -> tuple[str, bytes, bytes | None, object] | None:
    """Topic, value bytes, key and parsed value of one line; ``None`` to skip it."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        # Bad input is the worker's to dead-letter, so pass it on unchanged.
        return (default_topic, line, None, None) if default_topic else None
    if isinstance(obj, dict) and isinstance(obj.get("topic"), str) and "value" in obj:
        value = obj["value"]
        key = _key_of(value) if "key" not in obj else obj["key"].encode() if isinstance(obj["key"], str) else None
        return obj["topic"], orjson.dumps(value), key, value
    topic = (topic_for(obj) if topic_for and isinstance(obj, dict) else None) or default_topic
    # A plain event keeps its original bytes: what the file says is what is sent.
    return (topic, line, _key_of(obj), obj) if topic else None


async def produce_file(bootstrap: str, path: str | Path, *, topic_for: Callable[[dict], str] | None = None,
                       default_topic: str | None = None, speedup: float | None = None,
                       progress: bool = False, client: Mapping | None = None) -> dict[str, int]:
    """Send a JSON-lines file; returns messages sent per topic plus ``"skipped"`` lines.

    A line is ``{"topic": ..., "value": {...}}`` (optionally with ``"key"``:
    a string, or null for no key, instead of the default key) or a plain
    event, sent to ``topic_for(event)`` or else ``default_topic``. The key is the value's
    ``sku`` (UTF-8), or none when it has no usable sku. A line that is not
    JSON goes, as raw bytes, to ``default_topic`` if given, else is skipped;
    blank lines are ignored. With ``speedup``, sending is paced by event time:
    ``speedup`` event-time seconds (field ``ts``, epoch ms) per wall-clock
    second; events without a numeric ``ts`` are not delayed. ``client``: extra
    aiokafka arguments (security).
    """
    path = Path(path)
    counts: dict[str, int] = {"skipped": 0}
    bar = _Progress(path.stat().st_size) if progress else None
    t0 = ts0 = None
    try:
        async with Producer(bootstrap, **(client or {})) as p:
            with open(path, "rb") as f:
                for n, raw in enumerate(f, 1):
                    if bar and n % 2000 == 0:
                        bar.update(f.tell(), p.sent)
                    line = raw.strip()
                    routed = _route(line, topic_for, default_topic) if line else False
                    if not routed:
                        counts["skipped"] += routed is None  # blank lines are not counted
                        continue
                    topic, value, key, parsed = routed
                    ts = parsed.get("ts") if speedup and isinstance(parsed, dict) else None
                    if isinstance(ts, (int, float)) and not isinstance(ts, bool):
                        if ts0 is None:
                            t0, ts0 = time.monotonic(), ts
                        due = (ts - ts0) / 1000.0 / speedup - (time.monotonic() - t0)
                        if due > 0.005:
                            await p.flush()  # what is due now goes out before we sleep
                            await asyncio.sleep(due)
                    await p.send(topic, value, key)
                    counts[topic] = counts.get(topic, 0) + 1
    finally:
        if bar:
            bar.close()
    return counts


class _Progress:
    """A rich progress bar on stderr, in bytes of the file read."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._p = Progress(TextColumn("producing"), BarColumn(), TextColumn("{task.fields[sent]:,} sent"),
                           TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self._task = self._p.add_task("produce", total=total or 1, sent=0)
        self._p.start()

    def update(self, done: int, sent: int) -> None:
        self._p.update(self._task, completed=done, sent=sent)

    def close(self) -> None:
        self._p.stop()


def _decode(value: bytes | None) -> object:
    if value is None:
        return None  # a tombstone
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


async def _consumer(bootstrap: str, from_beginning: bool, client: Mapping | None) -> AIOKafkaConsumer:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest" if from_beginning else "latest",
                         max_partition_fetch_bytes=8 * 1024 * 1024, **(client or {}))
    try:
        await c.start()
    except (KafkaError, OSError) as exc:
        await c.stop()
        raise _unavailable(bootstrap, exc) from exc
    return c


async def _stop(c: AIOKafkaConsumer) -> None:
    # aiokafka's no-group coordinator raises CancelledError when stopped before
    # its background task first ran; one turn of the loop lets it start.
    await asyncio.sleep(0)
    await c.stop()


async def _records(bootstrap: str, topic: str, *, from_beginning: bool, limit: int | None,
                   idle_s: float | None, deadline: float | None,
                   client: Mapping | None = None) -> AsyncIterator[Record]:
    """Yield records of every partition of ``topic`` until ``limit``, ``idle_s`` of quiet or ``deadline``."""
    from stream_app.worker.broker import true_highwaters

    if limit is not None and limit <= 0:
        return
    last = time.monotonic()

    def done() -> bool:
        now = time.monotonic()
        return (idle_s is not None and now - last >= idle_s) or (deadline is not None and now >= deadline)

    # Wait for the topic without asking for it by name: a metadata request for
    # a missing topic may make the broker auto-create it with its default partitions.
    c = await _consumer(bootstrap, from_beginning, client)
    try:
        while not (parts := c.partitions_for_topic(topic)):
            if done():
                return
            await asyncio.sleep(0.2)
            if topic in await c.topics():
                # The consumer's own metadata is only loaded at start; a fresh one sees the topic.
                await _stop(c)
                c = await _consumer(bootstrap, from_beginning, client)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        c.assign(tps)
        if from_beginning:
            await c.seek_to_beginning(*tps)
        else:
            # The reported end may lie inside the last batch; correct it so old messages are not shown.
            ends = await true_highwaters(bootstrap, await c.end_offsets(tps), **(client or {}))
            for tp in tps:
                c.seek(tp, ends[tp])
        n = 0
        last = time.monotonic()
        while not done():
            batch = await c.getmany(timeout_ms=200, max_records=10_000)
            for tp, msgs in batch.items():
                for m in msgs:
                    yield (m.key.decode("utf-8", "replace") if m.key is not None else None,
                           _decode(m.value), tp.partition, m.offset)
                    n += 1
                    if limit is not None and n >= limit:
                        return
                last = time.monotonic()
    finally:
        await _stop(c)


async def tail(bootstrap: str, topic: str, *, from_beginning: bool = False, limit: int | None = None,
               timeout_s: float | None = None, client: Mapping | None = None) -> AsyncIterator[Record]:
    """Yield ``(key, value, partition, offset)`` of ``topic`` (all partitions, no consumer group).

    ``value`` is the decoded JSON, the raw bytes when it is not JSON, or
    ``None`` for a tombstone; ``key`` is UTF-8 text or ``None``. Starts at the
    oldest message or at the end; stops after ``limit`` messages or when
    nothing arrives for ``timeout_s`` seconds (both ``None``: runs until
    cancelled). A topic that does not exist yet is waited for. ``client``: extra
    aiokafka arguments (security).
    """
    # aclosing: a caller that stops early still closes the consumer at once.
    async with contextlib.aclosing(_records(bootstrap, topic, from_beginning=from_beginning, limit=limit,
                                            idle_s=timeout_s, deadline=None, client=client)) as records:
        async for rec in records:
            yield rec


async def read_to_end(bootstrap: str, partitions: Iterable[tuple[str, int]],
                      apply: Callable[[tuple[str, int], list], None], *, client: Mapping | None = None,
                      stall_s: float = 30.0) -> dict[tuple[str, int], int]:
    """Read ``partitions`` from their first record to their high watermark in large fetches; ``apply`` each batch.

    ``apply(partition, records)`` gets aiokafka ``ConsumerRecord``s in offset
    order. The end is the high watermark of the fetch responses, not
    ListOffsets' answer (which the embedded broker under-reports). Returns
    the offset of the last record read per partition (empty partitions left
    out). Raises :class:`KafkaUnavailable` when no record arrives for
    ``stall_s`` seconds while some are due.
    """
    todo = [TopicPartition(t, p) for t, p in partitions]
    last: dict[tuple[str, int], int] = {}
    if not todo:
        return last
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", max_partition_fetch_bytes=16 * 1024 * 1024,
                         fetch_max_bytes=64 * 1024 * 1024, fetch_max_wait_ms=100, **(client or {}))
    try:
        await c.start()
    except (KafkaError, OSError) as exc:
        await c.stop()
        raise _unavailable(bootstrap, exc) from exc
    try:
        c.assign(todo)
        await c.seek_to_beginning(*todo)
        # An empty partition would cost a fetch wait; the embedded broker's low end offsets are low only
        # within a partition's last batch, so end == beginning means empty there too.
        first, ends = await c.beginning_offsets(todo), await c.end_offsets(todo)
        pending, progress = {tp for tp in todo if ends[tp] > first[tp]}, time.monotonic()
        while pending:
            got = await c.getmany(*pending, timeout_ms=200, max_records=200_000)
            for tp, records in got.items():
                if records:
                    apply((tp.topic, tp.partition), records)
                    last[(tp.topic, tp.partition)] = records[-1].offset
                    progress = time.monotonic()
            for tp in list(pending):
                hw = c.highwater(tp)  # known after the first fetch response of the partition
                if hw is not None and await c.position(tp) >= hw:
                    pending.discard(tp)
            if pending and time.monotonic() - progress > stall_s:
                raise KafkaUnavailable(f"reading {sorted(str(tp) for tp in pending)} from {bootstrap} stalled "
                                       f"for {stall_s:.0f} s")
    finally:
        await _stop(c)
    return last


async def end_offsets(bootstrap: str, partitions: Iterable[tuple[str, int]], *,
                      client: Mapping | None = None) -> dict[tuple[str, int], int]:
    """The end offset (the next offset to be written) of each of ``partitions``.

    Corrected by one fetch per partition for a broker that under-reports
    ListOffsets (:func:`stream_app.worker.broker.true_highwaters`). Raises
    :class:`KafkaUnavailable` when the broker does not answer.
    """
    from stream_app.worker.broker import true_highwaters

    todo = [TopicPartition(t, p) for t, p in partitions]
    if not todo:
        return {}
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **(client or {}))
    try:
        await c.start()
        reported = await c.end_offsets(todo)
    except (KafkaError, OSError) as exc:
        raise _unavailable(bootstrap, exc) from exc
    finally:
        await _stop(c)
    ends = await true_highwaters(bootstrap, reported, **(client or {}))
    return {(tp.topic, tp.partition): off for tp, off in ends.items()}
