"""The worker's day loop without Kafka: events through the same ingest and forecast tick, partition by partition.

What a worker would publish for a stream, computed offline from the same
code: :class:`~stream_app.core.ingest.Ingestor` (decode, event-time rules,
windows), :func:`~stream_app.core.ticks.run_tick` (outcomes, calibration,
forecasts, stages) and :class:`~stream_app.core.learning.PartitionLearning`
(a calibrator per partition), with the rules built from the same
:class:`~stream_app.settings.Settings`. It replays the stream as a worker
consumes a backlog: every record is already in Kafka, so a topic with
records still to come is never idle, and records are taken in batches per
topic partition. The worker's results do not depend on how batches
interleave (``docs/ARCHITECTURE.md``, "Event time"), so this publishes what
a worker replaying the same files publishes; a test checks it message by
message.

Catalog records are embedded before the first event (the worker embeds
them within a second of their arrival, so a replay that sends the catalog
first and waits for its embeddings sees the same texts).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import orjson

from models.launch_prior import LaunchReference
from models.text import catalog_text
from stream_app.core.decode import KINDS, Invalid, decode_catalog
from stream_app.core.ingest import BatchOutcome, Ingestor
from stream_app.core.learning import PartitionLearning
from stream_app.core.launch_forecasts import launch_day
from stream_app.core.partitioning import partition_for
from stream_app.core.rules import calibration_rules, evidence_rules, stock_rules, tracker_rules, window_spec
from stream_app.core.scorer import Scorer, embedding_record
from stream_app.settings import Settings
from stream_app.core.ticks import UNKNOWN_GROUP, TickResult, TickTools, run_tick

BATCH = 500  # records per topic partition and fetch, as a consumer of a backlog takes them

OnTick = Callable[[int, int, TickResult], None]


@dataclass(frozen=True)
class Rec:
    """A source record as the ingest reads it (what aiokafka's ConsumerRecord carries)."""

    offset: int
    key: bytes
    value: bytes


class OfflineWorker:
    """Replays ``(kind, event)`` rows through the worker's day loop; see the module docstring.

    ``scorer``: usually the one ``settings`` ask for,
    :func:`stream_app.worker.scoring.build_scorer` (the caller's edge loads it);
    it may be replaced between ticks (a promoted model). ``samples``: ticks
    also make the training-samples records the worker publishes.
    """

    def __init__(self, settings: Settings, scorer: Scorer, samples: bool = False) -> None:
        self.settings = settings
        self.scorer = scorer
        self.samples = samples
        s = settings
        self.ingestor = Ingestor({}, window_spec(s), grace_ms=int(s.grace_s * 1000), max_ahead_ms=int(s.max_ahead_s * 1000),
                                 future_confirm=s.future_confirm, idle_s=0.0)
        self.learning = PartitionLearning(calibration_rules(s)) if s.calibration else None
        self.rules, self.stock = tracker_rules(s), stock_rules(s)
        self.catalog: dict[bytes, dict] = {}
        self.embeddings: dict[bytes, bytes] = {}
        self.rejected: list = []
        self.launches: dict[int, LaunchReference] = {}  # as the worker's: what each partition's last tick saw
        self.launch_days: dict[int, dict[bytes, int]] = {}  # partition -> SKU -> launch day of its catalog record
        self.catalog_launches: dict[int, LaunchReference] = {}  # what each partition's last tick saw of those

    def run(self, rows: Iterable[tuple[str, dict]], on_tick: OnTick) -> None:
        """Replay ``rows`` (topic kind, event dict) in send order; ``on_tick(partition, day, result)`` per tick."""
        records: dict[tuple[int, int], list[Rec]] = defaultdict(list)
        n = self.settings.partitions
        for kind, value in rows:
            # A copy: orjson's own result of a ~130-byte event holds ~4 KB until freed (measured: 2.7 GB for 650k
            # simulator events kept here; copied, 0.18 GB).
            raw = bytes(memoryview(orjson.dumps(value)))
            key = str(value.get("sku", "")).encode()
            if kind == "catalog":
                rec = decode_catalog(key, raw)
                if type(rec) is not Invalid:
                    self.catalog[key] = rec
                continue
            if kind in KINDS:
                bucket = records[(partition_for(key, n), KINDS.index(kind))]
                bucket.append(Rec(len(bucket), key, raw))
        self._embed()
        for key, rec in self.catalog.items():
            day = launch_day(rec.get("launched_at"))
            if day is not None:
                self.launch_days.setdefault(partition_for(key, n), {})[key] = day
        for partition in sorted({p for p, _ in records}):
            self._run_partition(partition, [records.get((partition, k), []) for k in range(len(KINDS))], on_tick)
        newest = [c.newest for c in self.ingestor.clocks.values() if c.newest is not None]
        reach = max(newest) if newest else None
        for partition in sorted(self.ingestor.clocks):
            # The stream has ended: suspects still waiting are settled as an idle topic's are.
            self._settle(partition, self.ingestor.drain(partition, 0.0, reach), on_tick, reach)

    def _run_partition(self, partition: int, topics: list[list[Rec]], on_tick: OnTick) -> None:
        ingestor = self.ingestor
        clock = ingestor.clock(partition)
        pos = [0] * len(topics)
        while any(p < len(t) for p, t in zip(pos, topics)):
            for kind, recs in enumerate(topics):
                if pos[kind] >= len(recs):
                    continue
                batch = recs[pos[kind]: pos[kind] + BATCH]
                pos[kind] += len(batch)
                clock.backlog = [p < len(t) for p, t in zip(pos, topics)]
                self._settle(partition, ingestor.process(kind, partition, batch, now=0.0), on_tick)
        clock.backlog = [False] * len(topics)
        self._settle(partition, ingestor.drain(partition, 0.0), on_tick)

    def _settle(self, partition: int, out: BatchOutcome, on_tick: OnTick, reach: int | None = None) -> None:
        # As the worker's settle: forecast the closed days, then take in what they released.
        while True:
            self.rejected += out.rejected
            if not out.closed_days:
                return
            for day in out.closed_days:
                on_tick(partition, day, self.tick(partition, day))
            out = self.ingestor.drain(partition, 0.0, reach)

    def tick(self, partition: int, day: int) -> TickResult:
        """One forecast tick of ``partition`` at the close of ``day``, as the worker's."""
        s = self.settings
        cal, pending = self.learning.tools_for(partition) if self.learning else (None, None)
        tools = TickTools(self.scorer, rules=self.rules, calibrator=cal, pending=pending, groups=self.groups_of,
                          batch_size=s.score_batch_size, active_days=s.forecast_active_days,
                          embeddings=self.embeddings if self.scorer.encoder is not None else None, stock=self.stock,
                          evidence=evidence_rules(s), samples=self.samples, cold_start=s.cold_start,
                          launches=self.launches.get(partition), catalog_reference=self.catalog_launches.get(partition),
                          launch_days=self.launch_days.get(partition)
                          if s.launch_forecasts and self.scorer.encoder is not None else None)
        result = run_tick(self.ingestor, partition, day, tools)
        self.launches[partition] = result.launches
        self.catalog_launches[partition] = result.catalog_reference
        if self.learning:
            self.learning.records(partition, day, result.expired)  # keeps the expiry bookkeeping as the worker's
        return result

    def groups_of(self, keys: list[bytes]) -> np.ndarray:
        """Calibration group (catalog category) of each SKU; "unknown" without a catalog record."""
        return np.array([(self.catalog.get(k) or {}).get("category") or UNKNOWN_GROUP for k in keys], dtype=object)

    def _embed(self) -> None:
        encoder = self.scorer.encoder
        if encoder is None or not self.catalog:
            return
        keys = list(self.catalog)
        texts = [catalog_text(r["title"], r["description"], r["category"]) for r in (self.catalog[k] for k in keys)]
        size = self.settings.embed_batch_size
        for start in range(0, len(keys), size):
            vectors = encoder.encode(texts[start: start + size])
            for key, text, vec in zip(keys[start: start + size], texts[start: start + size], vectors):
                self.embeddings[key] = embedding_record(text, vec)


def published_forecasts(settings: Settings, rows: Iterable[tuple[str, dict]], days: set[int] | None = None, *,
                        scorer: Scorer) -> dict[int, list[dict]]:
    """The forecast messages a worker publishes at the close of each day (``days``: only these), by day.

    Days are days since 1970-01-01 UTC; a message's ``as_of`` is the end of its day.
    """
    return published(settings, rows, days, scorer=scorer)[0]


def published(settings: Settings, rows: Iterable[tuple[str, dict]], days: set[int] | None = None, *,
              scorer: Scorer) -> tuple[dict[int, list[dict]], dict[int, list[dict]]]:
    """The forecast and the stage-alert messages a worker publishes at the close of each day, by day.

    As :func:`published_forecasts`, with the alerts of the same days beside the forecasts.
    """
    forecasts: dict[int, list[dict]] = defaultdict(list)
    alerts: dict[int, list[dict]] = defaultdict(list)

    def keep(partition: int, day: int, result: TickResult) -> None:
        if days is None or day in days:
            forecasts[day] += [orjson.loads(v) for _, v in result.forecasts]
            alerts[day] += [orjson.loads(v) for _, v in result.alerts]

    OfflineWorker(settings, scorer).run(rows, keep)
    return dict(forecasts), dict(alerts)
