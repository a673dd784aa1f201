"""The edges of ``trendcast simulate`` and ``trendcast replay``: files or Kafka, progress, summaries.

The simulator and the adapters are pure; this module writes their events to
files or sends them to Kafka, shows a progress bar, and returns the summary
lines the CLI prints.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from stream_app.core.decode import KINDS
from stream_app.data.eventfiles import TOPIC_KINDS, TopicFiles
from stream_app.data.offline import WorkerClocks, WorkerRules
from stream_app.data.replay import Adapter
from stream_app.settings import Settings
from stream_app.sim import Simulator, write_simulation
from stream_app.core.windows import DAY_MS

ON_TIME_VERDICTS = ("on_time", "late", "future")  # indices of stream_app.core.clock's verdicts


def worker_rules(settings: Settings) -> WorkerRules:
    """The event-time and dedup rules a worker with ``settings`` applies."""
    return WorkerRules(partitions=settings.partitions, grace_ms=int(settings.grace_s * 1000),
                       max_ahead_ms=int(settings.max_ahead_s * 1000), future_confirm=settings.future_confirm,
                       dedup_ids=settings.dedup_ids_per_sku)


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1000, timezone.utc).strftime("%Y-%m-%d")


class StreamCheck:
    """Watches a stream as the worker will judge it: events it will dead-letter, and the longest time jump."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clocks = WorkerClocks(worker_rules(settings))
        self.verdicts: Counter = Counter()
        self.last_ts: int | None = None
        self.jump_ms, self.jump_after = 0, 0

    def see(self, kind: str, value: dict) -> None:
        """Judge one event (catalog records are not judged)."""
        if kind not in KINDS:
            return
        ts = value["ts"]
        for _, verdict in self.clocks.offer(KINDS.index(kind), value["sku"].encode(), ts, None):
            self.verdicts[ON_TIME_VERDICTS[verdict]] += 1
        if self.last_ts is not None and ts - self.last_ts > self.jump_ms:
            self.jump_ms, self.jump_after = ts - self.last_ts, self.last_ts
        self.last_ts = ts if self.last_ts is None else max(ts, self.last_ts)

    def warning(self) -> str | None:
        """A line about events a worker with these settings will dead-letter, or None (call once, at the end)."""
        for _, verdict in self.clocks.finish():
            self.verdicts[ON_TIME_VERDICTS[verdict]] += 1
        future, late = self.verdicts["future"], self.verdicts["late"]
        if not future and not late:
            return None
        s = self.settings
        parts = []
        if future:
            parts.append(
                f"{future:,} events come more than TRENDCAST_MAX_AHEAD_S={s.max_ahead_s:.0f} s ahead of every "
                f"topic of their partition and are not followed by TRENDCAST_FUTURE_CONFIRM={s.future_confirm} "
                f"like them (longest jump in the stream: {self.jump_ms / DAY_MS:.1f} days, after "
                f"{_day(self.jump_after)}); the worker dead-letters them as 'future' (a bad producer clock?)")
        if late:
            parts.append(f"{late:,} events arrive after their day closed on their topic partition (the day's end "
                         f"plus TRENDCAST_GRACE_S={s.grace_s:.0f} s is behind an earlier event of the topic) and "
                         "will be dead-lettered as 'late'; raise TRENDCAST_GRACE_S to keep them")
        return "warning: " + "; ".join(parts)


class Progress:
    """A rich progress bar on stderr over event time (``total_days`` known) or over events (unknown)."""

    def __init__(self, label: str, *, first_ms: int | None = None, total_days: int | None = None,
                 enabled: bool = True) -> None:
        self._p = None
        self.first_ms = first_ms
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

        self._p = RichProgress(TextColumn(label), BarColumn(), TextColumn("{task.fields[events]:,} events"),
                               TextColumn("event time {task.fields[day]}"), TimeElapsedColumn(),
                               console=Console(stderr=True), transient=True)
        self._task = self._p.add_task(label, total=total_days, events=0, day="")
        self._p.start()

    def update(self, events: int, ts: int | None) -> None:
        """Show ``events`` done so far, at event time ``ts`` (epoch ms)."""
        if self._p is None or ts is None:
            return
        done = (ts - self.first_ms) / DAY_MS if self.first_ms is not None else None
        self._p.update(self._task, completed=done, events=events, day=_day(ts))

    def close(self) -> None:
        if self._p is not None:
            self._p.stop()


def _watched(items: Iterable[tuple[str, dict]], check: StreamCheck, bar: Progress) -> Iterator[tuple[str, dict]]:
    """Pass ``items`` through, judging each and moving the bar every 2,000 items."""
    for n, (kind, value) in enumerate(items, 1):
        check.see(kind, value)
        if n % 2000 == 0:
            bar.update(n, value.get("ts"))
        yield kind, value


def _send(settings: Settings, items: Iterable[tuple[str, dict]], speedup: float | None) -> Counter:
    from stream_app.worker.runner import prepare_broker
    from stream_app.worker.security import aiokafka_kwargs
    from stream_app.worker.send import send_events, topic_names

    async def run() -> Counter:
        await prepare_broker(settings)
        return await send_events(settings.bootstrap, items, topic_names(settings), speedup=speedup,
                                 client=aiokafka_kwargs(settings))

    return asyncio.run(run())


def _counts(counts: dict[str, int]) -> str:
    """``k=v`` pairs, topic kinds in their usual order first."""
    rank = {k: i for i, k in enumerate(TOPIC_KINDS)}
    ordered = sorted(counts.items(), key=lambda kv: rank.get(kv[0], len(rank)))
    return " ".join(f"{k}={v:,}" for k, v in ordered if v) or "nothing"


def run_simulate(settings: Settings, sim: Simulator, *, out: Path | None, kafka: bool,
                 speedup: float | None, progress: bool) -> list[str]:
    """Write the simulation to ``out`` and/or send it to Kafka; returns the summary lines."""
    lines = []
    if out is not None:
        bar = Progress("simulating", first_ms=sim.start_ms, total_days=sim.days, enabled=progress)
        try:
            counts = write_simulation(sim, out, on_day=lambda d, n: bar.update(n, sim.start_ms + (d + 1) * DAY_MS))
        finally:
            bar.close()
        lines.append(f"wrote {out}: {_counts(counts)} (labels.csv: true stage per SKU and day; simulation.json)")
    if kafka:
        check = StreamCheck(settings)
        bar = Progress("sending", first_ms=sim.start_ms, total_days=sim.days, enabled=progress)
        items = itertools.chain((("catalog", r) for r in sim.catalog()), sim.events())
        try:
            sent = _send(settings, _watched(items, check, bar), speedup)
        finally:
            bar.close()
        lines.append(f"sent to {settings.broker}: {_counts(sent)}")
        lines += [w for w in (check.warning(),) if w]
    return lines


def run_replay(settings: Settings, adapter: Adapter, *, out: Path | None, speedup: float | None,
               progress: bool) -> list[str]:
    """Replay ``adapter``'s events to ``out`` (files) or to Kafka; returns the summary lines."""
    check = StreamCheck(settings)
    bar = Progress(f"replaying {adapter.name}", enabled=progress)
    items = _watched(adapter.rows(), check, bar)
    try:
        if out is not None:
            with TopicFiles(out) as files:
                files.write_all(items)
            done, where = files.counts, f"wrote {out}"
        else:
            done, where = _send(settings, items, speedup), f"sent to {settings.broker}"
    finally:
        bar.close()
    lines = [f"{where}: {_counts(done)}"]
    absent = [k for k in KINDS if k not in adapter.topics]
    if absent:
        lines.append(f"no {' or '.join(absent)} in this dataset: none produced (the worker runs without them)")
    skipped = dict(sorted(adapter.skipped.items(), key=lambda kv: -kv[1]))
    total = sum(skipped.values())
    lines.append(f"skipped rows: {_counts(skipped)} (total {total:,})" if total else "skipped rows: none")
    lines += [w for w in (check.warning(),) if w]
    return lines
