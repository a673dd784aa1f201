"""Faust's tables, restored fast: the table side of :mod:`stream_app.worker.faust_adapter`.

Pinned to faust-streaming 0.15.3 like the adapter, and checked the same way
(``tests/unit/test_faust_contract.py``). What the worker gets from here:

* :class:`RestoringTable`, whose in-memory store is a :class:`BulkRestoreStore`;
* :class:`TrendcastTables`, Faust's table manager, which on a rebalance reads
  the newly assigned changelog partitions of every such table in one pass
  (:func:`restore_in_bulk`) before Faust's recovery starts, so the recovery
  finds nothing left to read; and which starts without Faust's one-second
  wait for late tables (ours are all declared before the app starts).

The contract relied on (Faust 0.15.3): the ``Table`` and ``TableManager``
settings, ``Collection._new_store_by_url``, the memory store's
``_key_partition``, ``TableManager.on_start`` doing nothing but a sleep,
``_update_channels`` and ``recovery.start``, ``TableManager.on_rebalance``,
``Recovery._add`` reading a store's ``persisted_offset`` and
``_build_highwaters`` subtracting 1, and the assignor's ``assigned_actives``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.stores import memory as faust_memory
from faust.tables import TableManager
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from stream_app.worker.kafka_io import KafkaUnavailable, end_offsets, read_to_end

log = logging.getLogger(__name__)


def kafka_client(app: Any) -> tuple[str, dict[str, Any]]:
    """The bootstrap servers and aiokafka security arguments of a Faust app's consumer."""
    conf = app.conf
    bootstrap = ",".join(f"{u.host}:{u.port or 9092}" for u in conf.broker_consumer)
    return bootstrap, faust_aiokafka.credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context)


class BulkRestoreStore(faust_memory.Store):
    """Faust's in-memory store, restored in bulk by :func:`restore_in_bulk` after a rebalance.

    Why: Faust's recovery hands every changelog record through an asyncio
    queue with per-record bookkeeping; measured here (Tansu, 2 cores), it
    restored ~3k records/s (34 s for the 85k records of 25k SKUs) while a
    raw aiokafka consumer reads 150k/s. The store reports the last offset
    read in bulk as persisted, so Faust's recovery finds nothing left to
    read. Only for that first recovery: once it is complete, the offsets
    Faust tracks itself apply again, as with the plain memory store.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self._restored: dict[TP, int] = {}
        # Active changelog partitions whose local copy is the whole changelog: their recovery completed, and
        # since then this worker alone wrote them. Faust's recovery tracks only offsets it read itself, so on
        # a rebalance that keeps them here it would read everything this worker wrote since (25 s at 100k SKUs).
        self._complete: set[TP] = set()

    def persisted_offset(self, tp: TP) -> int | None:
        return self._restored.get(tp)

    def apply(self, partition: int, records: list) -> None:
        """Apply changelog ``records`` (aiokafka ``ConsumerRecord``s in offset order) of ``partition``."""
        data, partition_of = self.data, self._key_partition
        for r in records:
            if r.value is None:
                data.pop(r.key, None)
                partition_of.pop(r.key, None)
            else:
                data[r.key] = r.value
                partition_of[r.key] = partition  # the memory store drops keys of partitions that moved away

    def restored(self, last: dict[TP, int]) -> None:
        """The local copy holds these partitions up to these offsets (the last record per partition)."""
        self._restored.update(last)

    def complete(self, tps: set) -> set:
        """Those of ``tps`` whose local copy is their whole changelog."""
        return self._complete & tps

    async def on_rebalance(self, assigned: set, revoked: set, newly_assigned: set, generation_id: int = 0) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        for tp in revoked:
            self._restored.pop(tp, None)
        self._complete -= revoked

    async def on_recovery_completed(self, active_tps: set, standby_tps: set) -> None:
        await super().on_recovery_completed(active_tps, standby_tps)
        topic = self.table.changelog_topic.get_topic_name()
        self._complete = {tp for tp in active_tps if tp.topic == topic}
        self._restored.clear()


async def restore_in_bulk(app: Any, tables: list[Any], newly_assigned: set) -> None:
    """Read the newly assigned active changelog partitions of ``tables`` into their stores, in one pass.

    One reader for every table: each reader costs a connection and a fetch
    round (~0.2 s here even with nothing to read), and a worker has five
    tables. If the read fails, nothing is reported as persisted: Faust's
    recovery then reads the partitions from the start and re-applies what
    was read here in the same order, so the result is the same, only slower.
    Active partitions kept from the last assignment whose copy is complete
    are reported as persisted up to their end (nothing to read).
    """
    stores = {t.changelog_topic.get_topic_name(): t.data for t in tables if isinstance(t.data, BulkRestoreStore)}
    actives = app.assignor.assigned_actives()
    todo = sorted((tp.topic, tp.partition) for tp in newly_assigned if tp.topic in stores and tp in actives)
    bootstrap, auth = kafka_client(app)
    await _kept_in_full(bootstrap, auth, stores, actives - newly_assigned)
    if not todo:
        return

    def apply(tp: tuple[str, int], records: list) -> None:
        stores[tp[0]].apply(tp[1], records)

    t0 = time.monotonic()
    try:
        last = await read_to_end(bootstrap, todo, apply, client=auth)
    except (KafkaUnavailable, KafkaError, OSError) as exc:
        log.warning("bulk restore of %d changelog partitions failed, Faust's recovery reads them: %s",
                    len(todo), exc)
        return
    for topic, store in stores.items():
        store.restored({TP(t, p): off for (t, p), off in last.items() if t == topic})
    log.info("restored %d changelog partitions of %d tables in bulk: %d keys, %.1f s", len(todo), len(stores),
             sum(len(s.data) for s in stores.values()), time.monotonic() - t0)


async def _kept_in_full(bootstrap: str, auth: dict, stores: dict[str, BulkRestoreStore], kept: set) -> None:
    complete = {tp for topic, store in stores.items() for tp in store.complete({t for t in kept if t.topic == topic})}
    if not complete:
        return
    try:
        ends = await end_offsets(bootstrap, sorted((tp.topic, tp.partition) for tp in complete), client=auth)
    except (KafkaUnavailable, KafkaError, OSError) as exc:
        log.warning("end offsets of %d kept changelog partitions unknown, Faust's recovery reads them: %s",
                    len(complete), exc)
        return
    for topic, store in stores.items():
        store.restored({TP(t, p): end - 1 for (t, p), end in ends.items() if t == topic and end > 0})


class TrendcastTables(TableManager):
    """Faust's table manager, restoring tables in bulk on a rebalance and starting without a wait.

    ``before_restore``: awaited with each new assignment (every topic
    partition) before any table reads its changelog: the worker's chance to
    drop what moved away and deliver the changes it still holds of the
    partitions it keeps, so the changelog's end read for those
    (:func:`restore_in_bulk`) includes them.
    """

    before_restore: Callable[[set], Awaitable[None]] | None = None

    async def on_start(self) -> None:
        # Faust sleeps a second here so tables declared late still join the recovery; the worker
        # declares all of its tables before the app starts, and the second is a second of every restart.
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()

    async def on_rebalance(self, assigned: set, revoked: set, newly_assigned: set, generation_id: int = 0) -> None:
        if self.before_restore is not None:
            await self.before_restore(assigned)
        await restore_in_bulk(self.app, list(self.values()), newly_assigned)
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)


class RestoringTable(faust.Table):
    """A Faust table whose in-memory store is a :class:`BulkRestoreStore` (other stores as configured)."""

    def _new_store_by_url(self, url: Any) -> Any:
        if str(url).split(":", 1)[0] != "memory":
            return super()._new_store_by_url(url)
        return BulkRestoreStore(url, self.app, self, table_name=self.name, key_type=self.key_type,
                                key_serializer=self.key_serializer, value_serializer=self.value_serializer,
                                value_type=self.value_type, loop=self.loop, options=self.options)
