"""The Faust internals stream_app/worker/faust_adapter.py and faust_tables.py rely on are still there (no broker needed).

A Faust upgrade that renames or drops one of them fails here, by name,
before any worker test hangs on a consumer that stopped committing.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from importlib.metadata import version

import aiokafka
import faust
import pytest
from faust.tables.table import Table
from faust.transport.drivers import aiokafka as faust_aiokafka

from stream_app.worker import faust_adapter, faust_tables

PINNED = "0.15.3"
CONSUMER = faust_aiokafka.Consumer
METHODS = ("_wait_next_records", "_new_offset", "_filter_tps_with_pending_acks", "_to_message")
FIELDS = ("_read_offset", "_acked", "_acked_index", "_committed_offset", "_buffered_partitions",
          "_unacked_messages", "_thread")


def _faust_source(cls) -> str:
    return "".join(inspect.getsource(k) for k in cls.__mro__ if k.__module__.startswith("faust"))


def test_faust_is_the_pinned_version():
    assert version("faust-streaming") == PINNED, "re-check every name below against the new Faust, then re-pin"


@pytest.mark.parametrize("name", METHODS)
def test_consumer_methods_overridden_or_called(name):
    assert callable(getattr(CONSUMER, name, None)), f"faust's aiokafka Consumer has no {name}"
    assert name in inspect.getsource(faust_adapter), f"the adapter no longer uses {name}: drop it from this list"


@pytest.mark.parametrize("name", FIELDS)
def test_consumer_state_fields(name):
    assert re.search(rf"self\.{name}\s*[:=]", _faust_source(CONSUMER)), f"faust's Consumer no longer sets {name}"


def test_fetcher_thread_and_aiokafka_poll_clock():
    assert callable(getattr(faust_aiokafka.AIOKafkaConsumerThread, "_ensure_consumer", None))
    assert callable(getattr(aiokafka.AIOKafkaConsumer, "last_poll_timestamp", None))


def test_app_transport_hook_and_table_store():
    assert "_new_transport" in faust.App.__dict__
    app = faust_adapter.TrendcastFaust("contract", transport_cls=faust_adapter.batching_transport(
        frozenset({"t"}), faust_adapter.CommitLedger()), broker="kafka://127.0.0.1:1", autodiscover=False)
    table = app.Table("contract-table", partitions=1, key_type=bytes, value_type=bytes)
    assert isinstance(table, Table)
    store = faust_adapter.local_store(table)
    assert isinstance(store, dict)
    store[b"k"] = b"v"
    assert dict(table.items()) == {b"k": b"v"}, "a table's local store is no longer the dict the table reads"
    assert issubclass(app.transport.Consumer, faust_adapter.BatchingConsumer), \
        "Faust no longer asks the app for its transport"


def test_the_bulk_restore_hooks():
    """What the bulk restore relies on: the Table and TableManager settings, the store factory, the memory
    store's key partitions, and the recovery taking a store's persisted offset as where to start reading."""
    from faust.stores import memory
    from faust.tables import recovery

    app = faust_adapter.TrendcastFaust("contract-bulk", transport_cls=faust_adapter.batching_transport(
        frozenset({"t"}), faust_adapter.CommitLedger()), broker="kafka://127.0.0.1:1", autodiscover=False)
    table = app.Table("contract-bulk-table", partitions=1, key_type=bytes, value_type=bytes)
    assert isinstance(table, faust_tables.RestoringTable), "Faust no longer builds tables from the Table setting"
    assert isinstance(table.data, faust_tables.BulkRestoreStore)
    assert isinstance(app.tables, faust_tables.TrendcastTables), "Faust no longer builds its table manager from the setting"
    assert "_key_partition" in inspect.getsource(memory.Store.__post_init__)
    for name in ("on_rebalance", "on_recovery_completed", "persisted_offset"):
        assert name in memory.Store.__dict__ or hasattr(memory.Store, name)
    assert "table.persisted_offset(tp)" in inspect.getsource(recovery.Recovery._add)
    assert "value - 1" in inspect.getsource(recovery.Recovery._build_highwaters), \
        "the recovery's highwater is no longer end - 1: re-check what persisted_offset must return"
    assert callable(getattr(type(app.assignor), "assigned_actives", None))
    t = faust.Table(app, name="contract-plain", key_type=bytes, value_type=bytes)
    assert callable(getattr(t, "_new_store_by_url", None))


def test_the_table_manager_start_it_replaces_only_waits():
    """TrendcastTables.on_start drops Faust's sleep and keeps the rest: so the rest must still be just that."""
    from faust.tables import TableManager

    body = [line.strip() for line in inspect.getsource(TableManager.on_start).splitlines()[2:] if line.strip()]
    assert body == ["await self.sleep(1.0)", "if not self.should_stop:", "await self._update_channels()",
                    "await self.recovery.start()"], "Faust's TableManager.on_start changed: re-check TrendcastTables"
    assert "table.on_rebalance" in inspect.getsource(TableManager.on_rebalance)


def test_the_fetch_wait_is_read_when_the_consumer_starts():
    """ShortPollConsumerThread sets aiokafka's _fetch_max_wait_ms after Faust built the consumer, before it starts."""
    assert "self._fetch_max_wait_ms = fetch_max_wait_ms" in inspect.getsource(aiokafka.AIOKafkaConsumer.__init__)
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(aiokafka.AIOKafkaConsumer.start)
    assert "_create_worker_consumer" in inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread)
    assert "AIOKafkaConsumerThread(" in inspect.getsource(CONSUMER._new_consumer_thread)
    app = faust_adapter.TrendcastFaust("contract-poll", transport_cls=faust_adapter.batching_transport(
        frozenset({"t"}), faust_adapter.CommitLedger()), broker="kafka://127.0.0.1:1", autodiscover=False)
    thread = app.consumer._thread
    assert isinstance(thread, faust_adapter.ShortPollConsumerThread)

    async def built(thread) -> tuple[int, str | None]:  # aiokafka builds its consumer inside a running loop
        consumer = thread._create_worker_consumer(app.transport)
        return consumer._fetch_max_wait_ms, consumer._group_instance_id

    assert asyncio.run(built(thread)) == (faust_adapter.FETCH_MAX_WAIT_MS, None)  # dynamic membership by default


def test_a_group_instance_id_makes_the_consumer_a_static_member_when_it_starts():
    """aiokafka reads _group_instance_id in start(), into its group coordinator (KIP-345 static membership)."""
    assert "self._group_instance_id = group_instance_id" in inspect.getsource(aiokafka.AIOKafkaConsumer.__init__)
    assert "group_instance_id=self._group_instance_id" in inspect.getsource(aiokafka.AIOKafkaConsumer.start)
    app = faust_adapter.TrendcastFaust("contract-static", transport_cls=faust_adapter.batching_transport(
        frozenset({"t"}), faust_adapter.CommitLedger()), group_instance_id="worker-7", broker="kafka://127.0.0.1:1",
        autodiscover=False)

    async def built() -> str | None:
        return app.consumer._thread._create_worker_consumer(app.transport)._group_instance_id

    assert asyncio.run(built()) == "worker-7"


def test_a_store_holds_in_full_what_its_last_recovery_completed_until_revoked():
    """A rebalance reports such partitions as persisted to their end instead of letting Faust re-read
    everything this worker wrote since its recovery (25 s at 100k SKUs)."""
    from faust.types import TP

    app = faust_adapter.TrendcastFaust("contract-full", transport_cls=faust_adapter.batching_transport(
        frozenset({"t"}), faust_adapter.CommitLedger()), broker="kafka://127.0.0.1:1", autodiscover=False)
    table = app.Table("contract-full-table", partitions=2, key_type=bytes, value_type=bytes)
    store = table.data
    topic = table.changelog_topic.get_topic_name()
    mine, other = {TP(topic, 0), TP(topic, 1)}, TP("elsewhere-changelog", 0)

    async def run():
        before = store.complete(mine)
        await store.on_recovery_completed(mine | {other}, set())
        after = store.complete(mine | {other})
        await store.on_rebalance(mine, {TP(topic, 0)}, set())
        return before, after, store.complete(mine)

    before, after, revoked = asyncio.run(run())
    assert before == set() and after == mine and revoked == {TP(topic, 1)}


def test_one_fetch_reaches_the_agent_as_one_message_with_every_source_partitions_batch():
    """Faust's drain loop and the agent's stream each give the event loop a turn per message (slow while ticks run).

    So one fetch is one message for the source topics; side topics stay
    record by record. Faust takes the message (its offset is past the read
    offset it checks) and every batched partition's read offset ends at its
    last record.
    """
    from types import SimpleNamespace

    from faust.types import TP

    class Rec(SimpleNamespace):
        pass

    def recs(first, n):
        return [Rec(offset=o, timestamp=1000 + o, timestamp_type=0) for o in range(first, first + n)]

    fetched = {TP("clicks", 0): recs(5, 3), TP("catalog", 0): recs(3, 2), TP("orders", 1): recs(10, 2),
               TP("carts", 2): []}

    class OneFetch(faust_adapter.BatchingConsumer):
        should_stop, flow_active = False, True
        batch_topics = frozenset({"clicks", "orders", "carts"})

        def __init__(self) -> None:  # no Faust service: only what getmany reads
            self.app = SimpleNamespace(consumer_generation_id=7)
            self._read_offset, self._buffered_partitions = {}, set()

        async def _wait_next_records(self, timeout):
            return fetched, None

        def _to_message(self, tp, rec):
            return ("record", tp, rec.offset)

    consumer = OneFetch()

    async def drain():
        return [m async for m in consumer.getmany(1.0)]

    got = asyncio.run(drain())
    side = [m for _, m in got if isinstance(m, tuple)]
    batched = [(tp, m) for tp, m in got if isinstance(m, faust_adapter.FetchMessage)]
    assert side == [("record", TP("catalog", 0), 3), ("record", TP("catalog", 0), 4)]
    assert len(batched) == 1 and len(got) == 3
    tp, message = batched[0]
    assert [(b.tp, [r.offset for r in b.records], b.generation_id) for b in message.batches] == [
        (TP("clicks", 0), [5, 6, 7], 7), (TP("orders", 1), [10, 11], 7)]
    assert tp == message.tp == TP("clicks", 0) and message.offset > consumer._read_offset[tp]  # Faust takes it
    consumer._read_offset[tp] = message.offset  # as Faust's drain loop does next
    assert consumer._read_offset == {TP("clicks", 0): 7, TP("orders", 1): 11}
