"""kafka_io against the embedded broker: topics, file replay keyed by SKU, reading back, tailing, errors."""

import asyncio
import os
import time
from collections import Counter, defaultdict

import numpy as np
import orjson
import pytest

from stream_app.worker.broker import EmbeddedBroker, free_port
from stream_app.worker.kafka_io import KafkaUnavailable, Producer, ensure_topics, produce_file, tail

pytestmark = pytest.mark.integration

PARTS = {"clicks": 2, "carts": 3, "orders": 4, "catalog": 1}
BAD_LINE = b"this is {not json"
DAY_MS = 86_400_000


async def read_all(bootstrap: str, topic: str, *, expect: int) -> list:
    """Every message of ``topic`` from the beginning: ``tail`` until ``expect`` or 2 s of quiet."""
    return [r async for r in tail(bootstrap, topic, from_beginning=True, limit=expect, timeout_s=2.0)]


def shop(n_skus: int = 30, days: int = 3, per_sku_day: int = 15, seed: int = 11) -> list[tuple[str, dict]]:
    """``(kind, value)``: a catalog record per SKU, then clicks, carts and orders in event-time order."""
    rng = np.random.default_rng(seed)
    items = [("catalog", {"schema_version": 1, "sku": f"sku-{s:03d}", "title": f"item {s}", "category": "things"})
             for s in range(n_skus)]
    ts = np.sort(20_000 * DAY_MS + rng.integers(0, days * DAY_MS, size=n_skus * days * per_sku_day))
    for i, t in enumerate(ts.tolist()):
        kind = ("clicks", "clicks", "clicks", "carts", "orders")[int(rng.integers(0, 5))]
        v = {"schema_version": 1, "event_id": f"e{i}", "sku": f"sku-{int(rng.integers(0, n_skus)):03d}", "ts": t}
        if kind == "carts":
            v |= {"qty": 1, "action": "add"}
        elif kind == "orders":
            v |= {"order_id": f"o{i}", "qty": int(rng.integers(1, 4)), "unit_price": 2.5}
        items.append((kind, v))
    return items


def write_jsonl(path, items) -> None:
    """``(topic, value)`` pairs as the ``{"topic": ..., "value": ...}`` lines ``trendcast produce`` reads."""
    path.write_bytes(b"".join(orjson.dumps({"topic": t, "value": v}) + b"\n" for t, v in items))


@pytest.fixture(scope="module")
def bootstrap():
    with EmbeddedBroker() as b:
        yield b.bootstrap


@pytest.fixture
def names(request):
    # Own topic names per test: the broker is shared by the module.
    prefix = f"kio{os.getpid()}-{request.node.name[:20]}"
    return {k: f"{prefix}-{k}" for k in PARTS}


def run(coro):
    return asyncio.run(coro)


def test_ensure_topics_is_idempotent(bootstrap, names):
    topics = {names[k]: n for k, n in PARTS.items()}
    run(ensure_topics(bootstrap, topics, compacted=[names["catalog"]]))
    run(ensure_topics(bootstrap, topics, compacted=[names["catalog"]]))  # already there: no error

    async def partitions():
        from aiokafka import AIOKafkaConsumer

        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        await c.start()
        try:
            return {t: len(c.partitions_for_topic(t) or ()) for t in topics}
        finally:
            await asyncio.sleep(0)  # stopping before its first turn raises CancelledError
            await c.stop()

    assert run(partitions()) == topics


def test_produce_file_and_read_back(bootstrap, names, tmp_path):
    run(ensure_topics(bootstrap, {names[k]: n for k, n in PARTS.items()}, compacted=[names["catalog"]]))
    items = shop()
    path = tmp_path / "events.jsonl"
    write_jsonl(path, ((names[k], v) for k, v in items))
    plain = {"schema_version": 1, "event_id": "plain-1", "sku": "sku-plain", "ts": 1, "session_id": "s"}
    no_sku = {"schema_version": 1, "event_id": "plain-2", "ts": 2}
    with open(path, "ab") as f:
        f.write(BAD_LINE + b"\n\n" + orjson.dumps(plain) + b"\n" + orjson.dumps(no_sku) + b"\n")

    counts = run(produce_file(bootstrap, path, default_topic=names["clicks"]))
    want = Counter(names[k] for k, _ in items)
    want[names["clicks"]] += 3  # the bad line and the two plain events
    assert counts == {**want, "skipped": 0}

    for kind in ("orders", "carts", "catalog"):
        got = run(read_all(bootstrap, names[kind], expect=want[names[kind]]))
        assert sorted(v["event_id"] if kind != "catalog" else v["sku"] for _, v, _, _ in got) == sorted(
            v["event_id"] if kind != "catalog" else v["sku"] for k, v in items if k == kind)
        assert all(key == v["sku"] for key, v, _, _ in got)
        # Keyed by SKU: all of a SKU's messages land in one partition, in order.
        where = defaultdict(set)
        for key, _, p, _ in got:
            where[key].add(p)
        assert all(len(ps) == 1 for ps in where.values())
        assert {p for _, _, p, _ in got} <= set(range(PARTS[kind]))

    clicks = run(read_all(bootstrap, names["clicks"], expect=want[names["clicks"]]))
    assert len(clicks) == want[names["clicks"]]
    raw = [(k, v) for k, v, _, _ in clicks if isinstance(v, bytes)]
    assert raw == [(None, BAD_LINE)]
    assert ("sku-plain", plain) in [(k, v) for k, v, _, _ in clicks]
    assert (None, no_sku) in [(k, v) for k, v, _, _ in clicks]

    # Without a default topic the bad line and the plain events have nowhere to go.
    assert run(produce_file(bootstrap, path))["skipped"] == 3


def test_wrapped_key_override_and_pacing(bootstrap, names, tmp_path):
    run(ensure_topics(bootstrap, {names["orders"]: 2}))
    path = tmp_path / "paced.jsonl"
    lines = [{"topic": names["orders"], "value": {"sku": "A", "ts": t}} for t in (0, 1000, 2000)]
    lines.append({"topic": names["orders"], "key": None, "value": {"sku": "B", "ts": 2000}})
    lines.append({"topic": names["orders"], "key": "C", "value": {"sku": "B", "ts": 2000}})
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    t0 = time.monotonic()
    assert run(produce_file(bootstrap, path, speedup=4.0)) == {names["orders"]: 5, "skipped": 0}
    assert time.monotonic() - t0 >= 0.45  # 2 s of event time at 4x
    got = run(read_all(bootstrap, names["orders"], expect=5))
    assert sorted((k or "", v["sku"]) for k, v, _, _ in got) == [("", "B"), ("A", "A"), ("A", "A"), ("A", "A"), ("C", "B")]


def test_tail_from_end_sees_only_new_messages(bootstrap, names):
    topic = names["clicks"]
    run(ensure_topics(bootstrap, {topic: 2}))

    async def scenario():
        async with Producer(bootstrap) as p:
            for i in range(50):
                await p.send(topic, orjson.dumps({"sku": f"s{i % 5}", "n": i}), f"s{i % 5}".encode())
        first = [r async for r in tail(bootstrap, topic, from_beginning=True, limit=7)]
        assert len(first) == 7
        old = [r async for r in tail(bootstrap, topic, timeout_s=1.0)]
        assert old == []  # the end is found even where the broker under-reports it

        async def later():
            await asyncio.sleep(1.5)
            async with Producer(bootstrap) as p:
                for i in range(3):
                    await p.send(topic, orjson.dumps({"sku": "new", "n": 100 + i}), b"new")

        task = asyncio.create_task(later())
        new = [r async for r in tail(bootstrap, topic, limit=3, timeout_s=10)]
        await task
        assert sorted(v["n"] for _, v, _, _ in new) == [100, 101, 102]

    run(scenario())


def test_unreachable_broker_is_one_clear_error():
    bootstrap = f"127.0.0.1:{free_port()}"
    with pytest.raises(KafkaUnavailable, match=f"cannot reach Kafka at {bootstrap}"):
        run(ensure_topics(bootstrap, {"x": 1}))

    async def produce():
        async with Producer(bootstrap):
            pass

    with pytest.raises(KafkaUnavailable, match="cannot reach Kafka"):
        run(produce())
    with pytest.raises(KafkaUnavailable, match="cannot reach Kafka"):
        run(read_all(bootstrap, "x", expect=1))


def test_read_to_end_reads_past_an_under_reported_end_offset_and_applies_tombstones(bootstrap):
    """Ten records in one producer batch (the embedded broker reports end 1), a tombstone, and an empty partition."""
    from aiokafka import AIOKafkaProducer

    from stream_app.worker.kafka_io import read_to_end

    topic = f"changelog-{time.time_ns()}"

    async def run():
        await ensure_topics(bootstrap, {topic: 2}, compacted=[topic])
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
        await p.start()
        try:
            await asyncio.gather(*[await p.send(topic, b"v%d" % i, key=b"k%d" % (i % 4), partition=0)
                                   for i in range(10)])
            await p.send_and_wait(topic, None, key=b"k1", partition=0)
        finally:
            await p.stop()
        data: dict[bytes, bytes] = {}
        batches = []

        def apply(tp, records):
            batches.append(tp)
            for r in records:
                if r.value is None:
                    data.pop(r.key, None)
                else:
                    data[r.key] = r.value
        last = await read_to_end(bootstrap, [(topic, 0), (topic, 1)], apply)
        return data, last, batches

    data, last, batches = asyncio.run(run())
    assert data == {b"k0": b"v8", b"k2": b"v6", b"k3": b"v7"}  # newest value per key, k1 deleted
    assert last == {(topic, 0): 10}  # the empty partition is left out
    assert set(batches) == {(topic, 0)}


def test_end_offsets_past_an_under_reported_end_and_of_an_empty_partition(bootstrap):
    """What a rebalance reports as persisted for a changelog partition it keeps: its true end."""
    from aiokafka import AIOKafkaProducer

    from stream_app.worker.kafka_io import end_offsets

    topic = f"ends-{time.time_ns()}"

    async def run():
        await ensure_topics(bootstrap, {topic: 2}, compacted=[topic])
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=50)
        await p.start()
        try:
            await asyncio.gather(*[await p.send(topic, b"v%d" % i, key=b"k", partition=0) for i in range(7)])
        finally:
            await p.stop()
        return await end_offsets(bootstrap, [(topic, 0), (topic, 1)])

    assert asyncio.run(run()) == {(topic, 0): 7, (topic, 1): 0}
