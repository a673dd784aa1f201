"""The Faust app: topics, tables, the ingest agent, the catalog agent and the timers.

Thin edge around the pure core (:mod:`stream_app.core.ingest`,
:mod:`stream_app.core.ticks`): decode → validate → pure step → table update →
emit → metrics. Nothing heavy happens at import time; :func:`create_app`
builds everything from one :class:`~stream_app.settings.Settings`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.types import TP

from models.launch_prior import LaunchReference
from models.stage_tracker import TrackerRules
from stream_app.core import inventory
from stream_app.worker.faust_adapter import (BatchMessage, BatchSchema, CommitLedger, TrendcastFaust, batching_transport,
                                      local_store)
from stream_app.core.ingest import BatchOutcome, Ingestor
from stream_app.core.learning import PartitionLearning, is_pending_record, pending_keys, record_outcomes
from stream_app.worker.logs import log_tick
from stream_app.worker.memory import release_free_memory
from stream_app.worker.metrics import Metrics
from stream_app.worker.publish import Publisher
from stream_app.core.rules import calibration_rules, evidence_rules, stock_rules, tracker_rules, window_spec
from stream_app.core.scorer import Scorer
from stream_app.worker.model_updates import ModelWatcher
from stream_app.worker.scoring import build_scorer
from stream_app.worker.security import faust_credentials
from stream_app.settings import Settings
from stream_app.worker.side_inputs import SideInputs
from stream_app.core.state import StateStore, Table
from stream_app.core.ticks import OffLoopJob, OutcomeStats, TickResult, TickTools, tick_steps

log = logging.getLogger("trendcast")

# Table names become changelog topic names: version them with the layout.
WINDOWS_TABLE = "sku-windows-v4"
CATALOG_TABLE = "sku-catalog-v1"
LEARNING_TABLE = "partition-learning-v1"
EMBEDDINGS_TABLE = "sku-embeddings-v1"
INVENTORY_TABLE = "sku-inventory-v1"
EMBED_INTERVAL_S = 0.5  # catalog texts wait at most this long to be embedded in one batch
MODELS_WAIT_S = 10.0  # the longest a first tick waits for the models topic (a broker that does not answer)
TABLES = (WINDOWS_TABLE, CATALOG_TABLE, LEARNING_TABLE, EMBEDDINGS_TABLE, INVENTORY_TABLE)  # every changelog-backed table (deploy creates them)


@dataclass
class Worker:
    """Everything one worker process runs, built by :func:`create_app`."""

    settings: Settings
    app: TrendcastFaust
    ingestor: Ingestor
    scorer: Scorer
    metrics: Metrics
    publisher: Publisher
    ledger: CommitLedger
    state: StateStore
    side: SideInputs
    learning: PartitionLearning | None
    rules: TrackerRules
    stock_rules: inventory.StockRules
    ready_partitions: set[int] = field(default_factory=set)
    # Revoked by a rebalance whose new assignment is not known yet. Faust revokes every partition and
    # then assigns; one that comes back is not restored from its changelog again, so its table keys and
    # learning state stay here until the assignment says whether it moved (:meth:`on_assigned`).
    parked: set[int] = field(default_factory=set)
    # Revoked while their tick ran: kept whole (windows, clock, held offsets, the tick itself) and out
    # of every flush until the assignment says whether they stay (the tick goes on) or moved (it stops).
    kept_ticking: set[int] = field(default_factory=set)
    recent_outcomes: dict[int, dict[int, OutcomeStats]] = field(default_factory=dict)  # horizon -> day -> sums
    last_event_wall: dict[int, float] = field(default_factory=dict)
    # The launches each partition's last tick saw in its windows, for the next tick's cold starts (from the
    # first sale) and catalog launches (from the launch day the catalog names); kept in memory only: a
    # restarted worker's first tick rebuilds them and forecasts no cold start until the next.
    launches: dict[int, LaunchReference] = field(default_factory=dict)
    catalog_launches: dict[int, LaunchReference] = field(default_factory=dict)
    newest_event_ms: int = 0
    # (topic, partition) -> (offset, Kafka timestamp ms) of the newest record taken in: the lag timer's
    # "newest applied record" (trendcast_consumer_lag_seconds).
    taken: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    # One ingest step at a time per partition (a batch, an idle settle, a revoke); a step that closes
    # a day starts that day's tick and returns.
    locks: dict[int, asyncio.Lock] = field(default_factory=dict)
    # The forecast tick running on each partition (one at a time, in day order). It runs beside the
    # partition's ingest, yielding between micro-batches; a flush leaves that partition's changes for
    # a later one, a clean stop waits for it, a revoke keeps it until the assignment (kept_ticking).
    ticks: dict[int, asyncio.Task] = field(default_factory=dict)
    # Set once the models topic has been read to its end (None: no model to follow): a restarted worker's
    # first tick waits for it (at most MODELS_WAIT_S), so it forecasts with the newest promoted model.
    models_read: asyncio.Event | None = None

    def serve(self, scorer: Scorer) -> None:
        """Forecast with ``scorer`` from the next tick on (a promoted model); running ticks keep theirs.

        Calibration goes on as it was: its guard turns off a correction that stops helping within
        days, and restarting it did worse (docs/MODEL.md, "Continual learning").
        """
        self.scorer = self.side.scorer = scorer

    def lock(self, partition: int) -> asyncio.Lock:
        """The lock that serialises everything that changes ``partition``'s state."""
        got = self.locks.get(partition)
        if got is None:
            got = self.locks[partition] = asyncio.Lock()
        return got

    @contextlib.asynccontextmanager
    async def _every_partition(self, skip: frozenset[int] = frozenset()):
        # Always in partition order, so two holders of several locks never wait on each other.
        async with contextlib.AsyncExitStack() as held:
            for p in sorted(self.locks):
                if p not in skip:
                    await held.enter_async_context(self.locks[p])
            yield

    def _busy(self) -> frozenset[int]:
        """Partitions with a tick in progress; a finished tick that failed raises here (once).

        Their state is not sent while the tick runs: a restart reads a
        partition's newest forecast day as its last closed day, so no SKU may
        reach the changelog forecast for a day the others are not yet.
        """
        for partition, task in list(self.ticks.items()):
            if task.done():
                del self.ticks[partition]
                if not task.cancelled():  # stopped because its partition moved away
                    task.result()
        return frozenset(self.ticks)

    def _held_back(self) -> frozenset[int]:
        """Partitions whose state no flush may send now: ticking, or revoked mid-tick and not reassigned yet."""
        return self._busy() | self.kept_ticking

    async def settled(self) -> None:
        """Wait for every forecast tick in progress; a tick that failed raises here (once)."""
        for partition in list(self.ticks):
            await self._tick_done(partition)

    async def _tick_done(self, partition: int) -> None:
        task = self.ticks.get(partition)
        if task is None:
            return
        try:
            # Shielded: a caller cancelled while it waits (a stop) must not leave a tick half done.
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # the caller was cancelled; a tick stopped because its partition moved is done
        finally:
            if task.done() and self.ticks.get(partition) is task:
                del self.ticks[partition]

    async def _start_tick(self, partition: int, day: int) -> bool:
        """Start ``day``'s tick on ``partition`` once its previous one ended; False if the partition moved meanwhile."""
        await self._tick_done(partition)  # one tick at a time per partition, in day order
        if partition not in self.ready_partitions:
            return False  # it moved away while this waited (its tick was stopped): the new owner closes the day
        task = self.ticks[partition] = asyncio.ensure_future(self.tick(partition, day))
        running = self.metrics.ticks_running
        running.inc()

        def ended(t: asyncio.Task) -> None:
            running.dec()
            if not t.cancelled() and t.exception() is not None:
                log.error("the forecast tick of partition %d for day %d failed", partition, day,
                          exc_info=t.exception())

        task.add_done_callback(ended)
        return True

    # --- partition lifecycle ---------------------------------------------------
    def ensure_partition(self, partition: int) -> None:
        """First batch of a partition since assignment: restore its clock and pending forecasts."""
        if partition in self.ready_partitions:
            return
        n = self.ingestor.restore_partition(partition, time.monotonic(), self.settings.forecast_active_days)
        waiting = 0
        if self.learning:
            if partition in self.parked:  # back after a rebalance: its learning state never left
                waiting = self.learning.waiting(partition)
            else:
                waiting = self.learning.restore(partition, self.learning_store)
            # Decoded, the pending forecasts live in the learning state; their records are for the next
            # restart only (the changelog keeps them), so the table does not hold a second copy.
            table = self.state[LEARNING_TABLE]
            table.forget(pending_keys(partition, list(table)), set())
        self.ready_partitions.add(partition)
        self.parked.discard(partition)
        log.info("partition %d ready: %d SKUs await a forecast, %d forecasts await their outcome",
                 partition, n, waiting)

    async def flush(self) -> int:
        """Write every table's changes to its changelog, wait for delivery, then release their offsets.

        Returns the number of changelog records written. The batches to
        release are taken first: a batch is held only after its effects are
        in the tables, so the changes sent next include all of them, and
        batches that finish while we wait are left for the next flush.
        Released offsets are committed by the consumer's commit timer.
        """
        async with self._every_partition():
            # Between steps, not inside a tick: a tick's (and a batch's closed days') state changes go
            # out together, so a SKU forecast on each of several days in a row is written once, not
            # once a day (the changelog, not compacted by every broker, is what a restart reads).
            # A partition whose tick runs keeps its changes and held offsets for a later flush.
            # The wait for delivery below holds no lock: ingest goes on meanwhile.
            busy = self._held_back()
            held, sent = self.ledger.take(busy), self.state.send(self.publisher, busy)
        return await self._deliver(held, sent)

    async def final_flush(self) -> int:
        """:meth:`flush` once every tick in progress has ended (a clean stop's last flush)."""
        await self.settled()
        return await self.flush()

    async def _flush(self) -> int:
        """:meth:`flush` for a caller that holds the lock of every partition not held back."""
        busy = self._held_back()
        return await self._deliver(self.ledger.take(busy), self.state.send(self.publisher, busy))

    async def _deliver(self, held: list, sent: dict[str, int]) -> int:
        await self.publisher.flush()
        self.ledger.release(held)
        n = sum(sent.values())
        self.metrics.changelog_writes.inc(n)
        self.metrics.skus_tracked.set(len(self.ingestor.store))
        self.metrics.records_waiting.set(sum(self.ingestor.waiting(p) for p in self.ready_partitions))
        return n

    @property
    def changelog_topic(self) -> str:
        """The SKU windows' changelog topic."""
        return self.state[WINDOWS_TABLE].topic

    async def on_revoked(self, partitions: set[int]) -> None:
        """Before partitions may move away: persist their state, commit its offsets, park them.

        A partition whose tick runs is not waited for: the whole group waits
        for this revoke, and a tick of 100k SKUs runs for seconds (a worker
        joining waited 28 s for one in the bench). Its released offsets are committed
        (their state is in the changelog); all else of it, the tick
        included, stays as it is and out of every flush until
        :meth:`on_assigned` says whether it stays or moved, so the changelog
        never holds half a tick. The other partitions are flushed (all their
        changes), their offsets committed and parked: what they keep in
        memory is dropped once the new assignment shows they moved.
        """
        for p in partitions:
            self.lock(p)
        # A partition ticking now may have a batch waiting under its lock for the tick: not locked.
        async with self._every_partition(skip=self._busy()):
            # With these locks held no tick can start; one that started while we waited is kept too.
            ticking = self._busy() & partitions
            await self._revoke(partitions - ticking, ticking)

    async def _revoke(self, partitions: set[int], ticking: frozenset[int] = frozenset()) -> None:
        await self._flush()
        tps = {tp for tp in self.ledger.released if tp.partition in partitions | ticking}
        if tps:
            await self.app.consumer.commit_released(tps)
        self.kept_ticking |= ticking
        self.ledger.forget({tp for tp in tps if tp.partition in partitions})
        self._release(partitions)
        self.parked |= partitions

    def _release(self, partitions: set[int]) -> None:
        # The clock and pending SKUs are rebuilt from the windows on the partition's next batch, here or
        # elsewhere; its undecided records are read again from the committed offsets.
        self.ingestor.forget(partitions)
        for key in [k for k in self.taken if k[1] in partitions]:
            del self.taken[key]
        self.ready_partitions -= partitions

    def on_assigned(self, partitions: set[int]) -> None:
        """The rebalance's new assignment (source partitions): drop the state of parked partitions that moved away.

        A partition revoked mid-tick that stays goes on as if never revoked
        (the records after its last commit come again and are applied once:
        the windows know their offsets and event ids). One that moved has its
        tick stopped and everything of it dropped: its new owner restores the
        changelog, which holds none of that tick, and reads on from the
        commit, which covers none of it either.
        """
        gone = self.parked - partitions
        if gone:
            self._drop(gone)
            self.parked -= gone
        moved = self.kept_ticking - partitions
        self.kept_ticking = set()  # those assigned back flush again once their tick ends
        if moved:
            for p in moved:
                task = self.ticks.pop(p, None)
                if task is not None:
                    task.cancel()  # its job on a thread finishes on its own and touches nothing shared
            self.ledger.forget(self.ledger.of_partitions(moved))
            self._release(moved)
            self._drop(moved)

    async def on_assignment(self, partitions: set[int]) -> None:
        """:meth:`on_assigned`, then deliver the changes of kept partitions whose tick ended meanwhile.

        Called before the tables restore (``TrendcastTables.before_restore``).
        A partition revoked mid-tick holds its changes back until the
        assignment; when it stays, the restore reads the changelog's end as
        what this worker already holds, so those changes must be in the
        changelog by then, or Faust's recovery reads them back one by one (the
        bench: 5.5 s for a 25k-SKU tick's records of two kept partitions
        while the joining worker was ready). A tick still running writes
        after the restore, as it would without a rebalance.
        """
        kept = self.kept_ticking & partitions
        self.on_assigned(partitions)
        if kept - self._busy():
            async with self._every_partition(skip=self._held_back()):
                await self._flush()

    def _drop(self, partitions: set[int]) -> None:
        if self.learning:
            self.learning.forget(partitions)
            learning = self.state[LEARNING_TABLE]
            learning.forget([k for k in learning if int(k.split(b":")[1]) in partitions], partitions)
        spec = self.ingestor.spec
        # Keys we inserted ourselves are unknown to Faust's memory store, so it
        # would not drop them: a stale copy would shadow the changelog when the
        # partition comes back. (Catalog, embedding and stock records are never
        # deleted, so the restore's newer record always replaces a stale copy.)
        windows = self.state[WINDOWS_TABLE]
        windows.forget([k for k, v in windows.items() if spec.load(v).partition in partitions], partitions)

    # --- the hot path -------------------------------------------------------------
    async def handle_batch(self, batch: BatchMessage) -> BatchOutcome:
        """Take in one fetched batch of one source topic partition, publish what it causes.

        Returns once the batch is applied: the forecasts of a day it closed
        come from that day's tick, which runs on (:meth:`settled` waits for it).
        """
        partition = batch.partition
        async with self.lock(partition):
            generation = getattr(self.app, "consumer_generation_id", None)
            if generation is not None and batch.generation_id != generation:
                # A rebalance happened while it waited for a tick: Faust's own stream skips such a
                # message, and the partition's owner reads it again from the committed offset.
                return BatchOutcome()
            self.ensure_partition(partition)
            kind = self.kind_of[batch.topic]
            mono = time.monotonic()
            self._note_backlog(partition)
            out = self.ingestor.process(kind, partition, batch.records, now=mono)
            self.last_event_wall[partition] = mono
            last = batch.records[-1]
            self.taken[(batch.topic, partition)] = (last.offset, last.timestamp)
            m = self.metrics
            m.events_consumed.labels(batch.topic).inc(out.consumed)
            m.batch_size.observe(out.consumed)
            m.processing_latency.observe(max(0.0, time.time() - batch.records[0].timestamp / 1000.0))
            await self.settle(partition, out, mono)
        return out

    async def settle(self, partition: int, out: BatchOutcome, mono: float, reach_ms: int | None = None,
                     now_ms: int | None = None) -> None:
        """Publish what decided records caused and start the ticks of the days they closed; repeat with what that released.

        Records wait while their day is too far ahead of the closed days
        (:mod:`stream_app.core.clock`): each closed day lets more through.
        Those are applied while the day's tick runs (they are of later days,
        which the tick does not read); a second day to close waits for the
        first one's tick. Then the decided offsets are held for the commit
        after the next flush that finds no tick running on the partition.
        """
        ingestor = self.ingestor
        while True:
            self._count(partition, out)
            if not out.closed_days:
                break
            for day in out.closed_days:
                if not await self._start_tick(partition, day):
                    return  # nothing of it is held: the new owner reads it again
            out = ingestor.drain(partition, mono, reach_ms, now_ms)
        topics = self.settings.source_topics
        for kind, topic in enumerate(topics):
            offset = ingestor.committable(partition, kind)
            if offset is not None:
                self.ledger.hold(TP(topic, partition), offset)

    def _note_backlog(self, partition: int) -> None:
        # A topic with records still in Kafka is not idle, however long it was silent.
        unread = getattr(self.app.consumer, "unread", None)
        if unread is not None:
            clock = self.ingestor.clock(partition)
            taken = self.ingestor.fetched
            clock.backlog = [unread(TP(t, partition), taken.get((partition, k)))
                             for k, t in enumerate(self.settings.source_topics)]

    def _count(self, partition: int, out: BatchOutcome) -> None:
        m = self.metrics
        topics = self.settings.source_topics
        for kind, n in out.applied_by_kind.items():
            m.events_applied.labels(topics[kind]).inc(n)
        m.duplicates.inc(out.duplicates)
        m.redelivered.inc(out.redelivered)
        for code, n in out.reasons.items():
            m.events_invalid.labels(code).inc(n)
        newest = self.ingestor.clocks[partition].newest
        if newest is not None and newest > self.newest_event_ms:
            self.newest_event_ms = newest
            m.event_time.set(newest / 1000.0)
        if out.rejected:
            self.publisher.dead_letters(out.rejected, topics)

    async def tick(self, partition: int, as_of_day: int) -> None:
        """Learn from ``as_of_day``'s outcomes on ``partition``, then forecast its active SKUs (a task of its own)."""
        t0 = time.perf_counter()
        if self.models_read is not None and not self.models_read.is_set():
            try:
                await asyncio.wait_for(self.models_read.wait(), MODELS_WAIT_S)
            except TimeoutError:
                self.models_read.set()  # waited once; a promotion read later serves from the tick after it
                log.warning("the models topic was not read within %.0f s: forecasting with %s %s",
                            MODELS_WAIT_S, *self.scorer.model)
        s = self.settings
        cal, pending = self.learning.tools_for(partition) if self.learning else (None, None)
        side = self.side
        stock = side.stock_store
        tools = TickTools(self.scorer, rules=self.rules, calibrator=cal, pending=pending,
                          groups=side.groups_of, batch_size=s.score_batch_size, active_days=s.forecast_active_days,
                          embeddings=side.embedding_store,
                          inventory=stock, stock=self.stock_rules, evidence=evidence_rules(s),
                          samples=bool(s.topic_training_samples), cold_start=s.cold_start,
                          launches=self.launches.get(partition), launch_days=await side.launch_days(partition),
                          catalog_reference=self.catalog_launches.get(partition))
        result = TickResult()
        for step in tick_steps(self.ingestor, partition, as_of_day, tools, result):
            if isinstance(step, OffLoopJob):
                # A micro-batch's work runs on a thread: meanwhile the loop serves the ingest (this
                # partition's too), timers, the web server and other partitions' ticks. On the loop, a
                # 100k-SKU tick left the ingest seconds behind (docs/BENCHMARKS.md, "Ticks beside the ingest").
                await asyncio.to_thread(step.run)
                continue
            # Each micro-batch's forecasts go out as they are made.
            self.publisher.forecasts(result.forecasts)
            self.publisher.samples(result.samples)
            result.forecasts, result.samples = [], []
            await asyncio.sleep(0)
        self.publisher.forecasts(result.forecasts)
        self.publisher.samples(result.samples)
        self.publisher.alerts(result.alerts)
        self.launches[partition] = result.launches  # the next tick's cold starts are forecast from these
        self.catalog_launches[partition] = result.catalog_reference  # and its catalog launches from these
        self.metrics.cold_starts.inc(result.cold_starts)
        stock_table = self.state[INVENTORY_TABLE]
        for key in result.inventory:  # alert marks the tick set in the stock records
            stock_table.put(key, stock[key], partition)
        if self.learning:
            learning = self.state[LEARNING_TABLE]
            for key, value in self.learning.records(partition, as_of_day, result.expired):
                if value is None:
                    learning.delete(key, partition)
                else:
                    learning.put(key, value, partition)
        record_outcomes(self.metrics, self.recent_outcomes, result, as_of_day)
        # The tick's arrays and messages are freed now; without this the process keeps their pages.
        await asyncio.to_thread(release_free_memory)
        dt = time.perf_counter() - t0
        self.metrics.tick_duration.observe(dt)
        self.metrics.tick_skus.observe(result.skus)
        log_tick(log, partition, as_of_day, result.skus, len(result.alerts), dt,
                 outcomes=sum(o.n for o in result.outcomes.values()))

    @property
    def learning_store(self) -> dict[bytes, bytes]:
        """The learning table's local dict (read by the restore; written through :attr:`state`)."""
        return self.state[LEARNING_TABLE].data

    async def advance_idle(self) -> None:
        """Settle what idle topics left waiting, and move idle partitions' event time forward so their days close."""
        now = time.monotonic()
        idle_after = self.settings.idle_timeout_s
        wallclock = self.settings.idle_advance == "wallclock"
        clocks = self.ingestor.clocks
        for partition in sorted(self.ready_partitions):
            async with self.lock(partition):
                if partition not in self.ready_partitions:  # revoked while we waited
                    continue
                clock = clocks.get(partition)
                if clock is None:
                    continue
                peers = [c.newest for p, c in clocks.items() if p != partition and c.newest is not None]
                reach, wall_ms = max(peers, default=None), int(time.time() * 1000)
                self._note_backlog(partition)
                idle = now - self.last_event_wall.get(partition, now) >= idle_after
                # A partition with records waiting, or still in Kafka, is not out of data:
                # moving its clock would make them late.
                if idle and clock.newest is not None and not self.ingestor.waiting(partition) \
                        and not any(clock.backlog):
                    if wallclock:
                        clock.advance_to(wall_ms)
                    elif peers:
                        clock.advance_to(max(peers))
                await self.settle(partition, self.ingestor.drain(partition, now, reach, wall_ms), now, reach,
                                  wall_ms)

    @property
    def kind_of(self) -> dict[str, int]:
        s = self.settings
        return {name: i for i, name in enumerate(s.source_topics)}


def faust_config(settings: Settings) -> dict[str, Any]:
    """Faust settings derived from ours (tuned for the batch path)."""
    return dict(
        broker=settings.broker,
        broker_credentials=faust_credentials(settings),
        store=settings.store,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(0.5, settings.session_timeout_s / 6),
        broker_max_poll_records=settings.max_poll_records,
        broker_commit_interval=settings.commit_interval_s,
        consumer_max_fetch_size=settings.fetch_max_bytes,
        stream_wait_empty=False,
        producer_linger=0.02,
        producer_max_batch_size=512 * 1024,
        web_enabled=settings.web_port != 0,
        web_bind=settings.web_host,
        web_port=settings.web_port or 6066,
        datadir=settings.data_dir,
        autodiscover=False,
        table_standby_replicas=0,
    )


def _raw_table(app: faust.App, name: str, partitions: int) -> Any:
    table = app.Table(name, partitions=partitions, key_type=bytes, value_type=bytes)
    # Bytes in, bytes out: the changelog carries our own compact encoding.
    table.key_serializer = table.value_serializer = "raw"
    return table


def create_app(settings: Settings, *, metrics: Metrics | None = None, producer: Any = None) -> Worker:
    """Build the Faust app and its worker state for ``settings`` (connects to nothing yet).

    ``producer``: what the publisher sends through (default: librdkafka's
    for ``settings.broker``; the in-process tests pass a recording one).
    """
    ledger = CommitLedger()
    sources = frozenset(settings.source_topics)
    side_topics = frozenset(t for t in (settings.topic_catalog, settings.topic_inventory) if t)
    app = TrendcastFaust(settings.app_id, transport_cls=batching_transport(sources, ledger, side_topics),
                         group_instance_id=settings.group_instance_id, **faust_config(settings))
    # Faust's tables restore the local dicts from the changelogs; the worker writes through the state store.
    faust_tables = {name: _raw_table(app, name, settings.partitions) for name in TABLES}
    spec = window_spec(settings)
    store = local_store(faust_tables[WINDOWS_TABLE])
    ingestor = Ingestor(
        store, spec,
        grace_ms=int(settings.grace_s * 1000),
        max_ahead_ms=int(settings.max_ahead_s * 1000),
        future_confirm=settings.future_confirm,
        idle_s=settings.idle_timeout_s,
    )
    metrics = metrics or Metrics.create()
    scorer = build_scorer(settings, metrics, background_text=True)
    publisher = Publisher(settings, metrics, producer)
    state = StateStore(
        Table(name, t.changelog_topic.get_topic_name(), local_store(t),
              dirty=ingestor.take_dirty if name == WINDOWS_TABLE else None,
              transient=is_pending_record if name == LEARNING_TABLE else None)
        for name, t in faust_tables.items())
    worker = Worker(
        settings=settings, app=app, ingestor=ingestor, scorer=scorer, metrics=metrics, publisher=publisher,
        ledger=ledger, state=state,
        side=SideInputs(settings, metrics, publisher, scorer, ledger, state[CATALOG_TABLE], state[EMBEDDINGS_TABLE],
                        state[INVENTORY_TABLE]),
        learning=PartitionLearning(calibration_rules(settings), metrics) if settings.calibration else None,
        rules=tracker_rules(settings), stock_rules=stock_rules(settings),
    )
    _wire(worker)
    return worker


def _wire(worker: Worker) -> None:
    app, s = worker.app, worker.settings
    source_topic = app.topic(*s.source_topics, schema=BatchSchema(), partitions=s.partitions)
    catalog_topic = app.topic(s.topic_catalog, key_type=bytes, value_type=bytes,
                              key_serializer="raw", value_serializer="raw", partitions=s.partitions)

    @app.agent(source_topic, name="update_sku_windows")
    async def update_sku_windows(stream: Any) -> None:
        async for fetched in stream:
            for batch in fetched.batches:
                await worker.handle_batch(batch)

    @app.agent(catalog_topic, name="store_catalog_records")
    async def store_catalog_records(stream: Any) -> None:
        async for event in stream.events():
            await worker.side.handle_catalog(event)

    @app.timer(s.flush_interval_s)
    async def flush_changelogs() -> None:
        await worker.flush()

    # A clean stop flushes the last batches' state before the final commit.
    worker.ledger.before_final_commit = worker.final_flush

    if s.topic_inventory:
        inventory_topic = app.topic(s.topic_inventory, key_type=bytes, value_type=bytes,
                                    key_serializer="raw", value_serializer="raw", partitions=s.partitions)

        @app.agent(inventory_topic, name="store_inventory_counts")
        async def store_inventory_counts(stream: Any) -> None:
            async for event in stream.events():
                await worker.side.handle_inventory(event)

    if s.forecaster == "model":
        worker.models_read = asyncio.Event()
        watcher = ModelWatcher(s, worker.metrics, lambda: worker.scorer, worker.serve, worker.models_read.set)

        @app.task
        async def follow_promoted_models() -> None:
            await watcher.run()

    @app.timer(EMBED_INTERVAL_S)
    async def embed_catalog_texts() -> None:
        await worker.side.embed_catalog()

    @app.timer(s.tick_check_s)
    async def advance_idle_partitions() -> None:
        await worker.advance_idle()

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: Any, revoked: set, **kwargs: Any) -> None:
        parts = {tp.partition for tp in revoked if tp.topic in s.source_topics}
        if parts:
            await worker.on_revoked(parts)

    async def on_assigned(assigned: set) -> None:
        await worker.on_assignment({tp.partition for tp in assigned if tp.topic in s.source_topics})

    # Before the tables restore, not after (Faust's on_partitions_assigned signal comes after): the
    # changes of a kept partition must be in its changelog when the restore reads where it ends.
    app.tables.before_restore = on_assigned

    # Faust calls on_rebalance_complete once tables are recovered and streams
    # resume; readiness (trendcast_ready, /readyz) is stream_app.worker.health's.
    @app.on_rebalance_complete.connect
    def count_recovered(sender: Any, **kwargs: Any) -> None:
        worker.metrics.skus_tracked.set(len(worker.ingestor.store))

