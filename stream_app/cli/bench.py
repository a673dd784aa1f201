"""``trendcast bench``: the worker measured against the raw consumer, in one run.

Phases, all on the same broker and the same events:

1. produce ``events`` events over ``skus`` SKUs (every SKU at least once, the
   rest Zipf-distributed, as popularity is) spanning ``days`` of event time;
2. the ceiling: a raw aiokafka consumer (``getmany`` + ``orjson.loads``)
   reads them all, three times in new groups (the median counts: single
   reads of ~1.5 s vary by ±30% here);
3. a worker process consumes them end to end (windows updated, every day
   closed and forecast, changelogs written); throughput is events divided by
   the time from its first consumed event to the moment all are taken in
   and no forecast tick runs, read off its ``/metrics``; memory is its RSS
   beyond an idle worker's (one on empty topics, once its resident size
   settled: it imports river.drift and the text encoder on threads after
   it is ready, ~120 MB that are no SKU's) divided by SKUs tracked; the
   forecast ticks' wall time over the same span (the tick histogram's sum,
   partitions added up: ticks of several partitions overlap) shows how
   much of the run forecasting took, since every closed day forecasts
   every active SKU;
4. latency: a steady trickle of new events once the worker is caught up;
   its first events close the last day, so a tick of every SKU runs while
   the rest arrive; p50/p99 of the worker's ingest-latency histogram;
5. recovery: SIGKILL the worker, start another, time until it reports ready
   with every SKU's state recovered;
6. rebalance: a second worker joins the recovered one; time from its start
   until both report ready, the newcomer with the SKUs of the partitions it
   took over (2 of 4 with the default partitions) recovered.

``--part scaling`` (:mod:`stream_app.cli.bench_scaling`) runs phases 1-3
at several sizes.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import orjson

from stream_app.worker.broker import free_port
from stream_app.settings import Settings
from stream_app.core.windows import DAY_MS, WindowSpec

KIND_SHARE = (0.70, 0.20, 0.10)  # clicks, carts, orders


def synth_events(n: int, skus: int, days: int, seed: int = 1, start_day: int = 20_000) -> list[tuple[int, bytes, bytes]]:
    """``n`` encoded events ``(kind, key, value)`` in event-time order; every SKU appears at least once."""
    rng = np.random.default_rng(seed)
    popular = rng.zipf(1.2, size=max(0, n - skus)) % skus
    sku_idx = np.concatenate([rng.permutation(skus), popular])[:n]
    kinds = rng.choice(3, size=n, p=KIND_SHARE)
    ts = start_day * DAY_MS + np.sort(rng.integers(0, days * DAY_MS, size=n))
    qty = rng.integers(1, 4, size=n)
    out = []
    dumps = orjson.dumps
    for i in range(n):
        sku = f"SKU-{sku_idx[i]:07d}"
        k = int(kinds[i])
        v = {"schema_version": 1, "event_id": f"b{i}", "sku": sku, "ts": int(ts[i])}
        if k == 1:
            v["qty"], v["action"] = int(qty[i]), ("add" if i % 5 else "remove")
        elif k == 2:
            v["order_id"], v["qty"], v["unit_price"] = f"o{i}", int(qty[i]), 4.95
        out.append((k, sku.encode(), dumps(v)))
    return out


async def _produce(bootstrap: str, topics: tuple[str, str, str], events: list) -> float:
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks=1)
    await p.start()
    t0 = time.perf_counter()
    try:
        futs = []
        for k, key, value in events:
            futs.append(await p.send(topics[k], value, key=key))
            if len(futs) >= 10_000:  # a million SKUs' events: their delivery futures alone took gigabytes
                await asyncio.gather(*futs)
                futs.clear()
        await asyncio.gather(*futs)
    finally:
        await p.stop()
    return len(events) / (time.perf_counter() - t0)


async def _raw_consume(bootstrap: str, topics: tuple[str, ...], n: int) -> float:
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, group_id=f"bench-raw-{time.time_ns()}",
        auto_offset_reset="earliest", max_partition_fetch_bytes=4 << 20, fetch_max_bytes=16 << 20,
    )
    await c.start()
    seen, t0 = 0, None
    loads = orjson.loads
    try:
        while seen < n:
            batch = await c.getmany(timeout_ms=2000, max_records=10_000)
            if not batch and t0 is not None:
                break
            for records in batch.values():
                if t0 is None:
                    t0 = time.perf_counter()
                for r in records:
                    loads(r.value)
                seen += len(records)
    finally:
        await c.stop()
    return seen / (time.perf_counter() - t0)


def scrape(port: int) -> dict[str, float]:
    """Sum the samples of a Prometheus text page by metric name (labels summed)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        if "_bucket" in name:
            name = name_labels  # keep buckets apart (le label)
        out[name] = out.get(name, 0.0) + float(value)
    return out


def hist_quantile(buckets: dict[float, float], q: float) -> float:
    """Quantile from cumulative histogram buckets ``{le: count}``, interpolated like PromQL."""
    items = sorted(buckets.items())
    total = items[-1][1]
    if total <= 0:
        return float("nan")
    rank, prev_le, prev_c = q * total, 0.0, 0.0
    for le, c in items:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-12)
        prev_le, prev_c = le, c
    return items[-1][0]


def _latency_buckets(m: dict[str, float], name: str) -> dict[float, float]:
    out = {}
    for k, v in m.items():
        if k.startswith(name + "_bucket{"):
            le = k.split('le="', 1)[1].split('"', 1)[0]
            out[float(le)] = v
    return out


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


TICK_SUM = "trendcast_forecast_tick_duration_seconds_sum"  # seconds, every partition's ticks added up
# The worker's topics, renamed per bench run so runs never read each other's events.
TOPICS = ("clicks", "carts", "orders", "catalog", "forecasts", "alerts", "dead_letters")


def idle_rss(env: dict[str, str], log: Path, run: str) -> int:
    """Resident size of a worker with nothing to read (its own group and empty topics), once it settled."""
    idle = {**env, "TRENDCAST_APP_ID": f"{run}-idle",
            **{f"TRENDCAST_TOPIC_{t.upper()}": f"{run}-idle-{t}" for t in TOPICS}}
    w = WorkerProc.start(idle, log)
    try:
        w.wait(lambda m: m.get("trendcast_ready", 0) == 1, 120, poll=0.1)
        now, deadline = _rss_bytes(w.proc.pid), time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(1.0)
            last, now = now, _rss_bytes(w.proc.pid)
            if abs(now - last) < 1 << 20:
                break
        return now
    finally:
        w.stop()


@dataclass
class WorkerProc:
    """A ``trendcast worker`` subprocess with its metrics port."""

    proc: subprocess.Popen
    port: int

    @classmethod
    def start(cls, env: dict[str, str], log: Path) -> "WorkerProc":
        port = free_port()
        env = {**env, "TRENDCAST_METRICS_PORT": str(port)}
        with open(log, "ab") as f:
            p = subprocess.Popen([sys.executable, "-m", "stream_app.cli", "worker"], env=env, stdout=f, stderr=f)
        return cls(p, port)

    def metrics(self) -> dict[str, float]:
        try:
            return scrape(self.port)
        except OSError:
            return {}

    def wait(self, cond, timeout: float, poll: float = 0.25) -> tuple[float, dict[str, float]]:
        """Poll metrics until ``cond(metrics)``; return (monotonic time, metrics)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with code {self.proc.returncode}")
            m = self.metrics()
            if m and cond(m):
                return time.monotonic(), m
            time.sleep(poll)
        m = self.metrics()
        brief = {k: v for k, v in m.items() if k.startswith("trendcast_") and "_bucket" not in k}
        raise TimeoutError(f"worker did not reach the expected state within {timeout:.0f} s; last metrics: {brief}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def consumed(m: dict[str, float]) -> float:
    return m.get("trendcast_events_consumed_total", 0.0)


def prepare_run(settings: Settings) -> tuple[Settings, dict[str, str], str]:
    """A run's settings (every topic renamed for it, so runs never read each other's events, and created),
    the environment its workers start with, and the run's name."""
    from stream_app.worker.kafka_io import ensure_topics
    from stream_app.worker.runner import all_topics

    run = f"bench{time.time_ns() // 1_000_000}"
    s = settings.model_copy(update={
        "app_id": run, **{f"topic_{t}": f"{run}-{t}" for t in TOPICS},
    })
    asyncio.run(ensure_topics(s.bootstrap, all_topics(s)))
    env = {**os.environ, **{f"TRENDCAST_{k.upper()}": str(v) for k, v in s.model_dump().items() if v is not None},
           # Faust's web server is not measured, and two workers of phase 6 would both bind its port.
           "TRENDCAST_LOG_LEVEL": "WARNING", "TRENDCAST_WEB_PORT": "0"}
    env.pop("TRENDCAST_GROUP_INSTANCE_ID", None)  # two workers under one name would fence each other
    Path(".trendcast").mkdir(exist_ok=True)
    return s, env, run


def end_to_end(
    s: Settings, env: dict[str, str], log: Path, *, events: int, skus: int, days: int, rss_idle: int,
    console, of: int, profile: Path | None = None,
) -> tuple[WorkerProc, dict]:
    """Phases 1-3 on the run's topics: produce, the raw consumer's ceiling, one worker end to end.

    Returns the worker, still running and caught up, and the figures:
    rates (events/s), forecasts, the ticks' summed wall time and the run's
    (s), SKUs tracked and memory growth per SKU (bytes beyond ``rss_idle``).
    ``of``: phases of the whole run, for the progress lines.
    """
    console.print(f"[bold]1/{of}[/] generating and producing {events:,} events over {skus:,} SKUs…")
    evs = synth_events(events, skus, days)
    produce_rate = asyncio.run(_produce(s.bootstrap, s.source_topics, evs))
    del evs
    console.print(f"[bold]2/{of}[/] raw aiokafka consumer (the ceiling), median of 3 reads…")
    raw_runs = sorted(asyncio.run(_raw_consume(s.bootstrap, s.source_topics, events)) for _ in range(3))
    console.print(f"[bold]3/{of}[/] worker end to end…")
    started = time.monotonic()
    w = WorkerProc.start(env, log)
    try:
        t_ready, _ = w.wait(lambda m: m.get("trendcast_ready", 0) == 1, 120, poll=0.05)
        # Polling costs the worker CPU (the /metrics page is rendered each
        # time): 4 Hz bounds the error to ±0.25 s on a run of tens of seconds.
        spy = _start_profiler(w.proc.pid, profile) if profile else None
        t_first, m_first = w.wait(lambda m: consumed(m) > 0, 60, poll=0.05)
        # End to end: every event taken in and every day it closed forecast (a tick runs beside the
        # ingest, so the last one may still run when the last event is in). A million SKUs take minutes.
        def caught_up(m: dict[str, float]) -> bool:
            return consumed(m) >= events and m.get("trendcast_forecast_ticks_running", 1) == 0

        while True:
            t_done, m = w.wait(caught_up, max(600.0, events / 2000), poll=0.25)
            # A day's tick starts once the partition's previous one ended, so the gauge can read 0 between
            # the two: caught up only if it still does a moment later.
            time.sleep(0.5)
            if caught_up(w.metrics()):
                break
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            spy.wait(60)
        worker_rate = events / max(t_done - t_first, 1e-9)
        tick_s = m.get(TICK_SUM, 0.0) - m_first.get(TICK_SUM, 0.0)
        # Every SKU has an event (when there are enough events); the gauge is set at each flush, and
        # the last flush must land before the memory is read.
        w.wait(lambda m: m.get("trendcast_skus_tracked", 0) >= min(skus, events), 120)
        time.sleep(2 * s.flush_interval_s + 0.5)
        m = w.metrics()
        rss = _rss_bytes(w.proc.pid)
    except BaseException:
        w.stop()
        raise
    tracked = m.get("trendcast_skus_tracked", 0.0)
    return w, {
        "events": events, "skus": skus, "days": days, "produce_rate": produce_rate, "raw_rate": raw_runs[1],
        "raw_runs": raw_runs, "worker_rate": worker_rate, "ratio": worker_rate / raw_runs[1],
        "forecasts": m.get("trendcast_forecasts_published_total", 0.0), "skus_tracked": tracked,
        "run_s": events / worker_rate, "tick_s": tick_s, "changelog": m.get("trendcast_changelog_writes_total", 0.0),
        "rss_growth": rss - rss_idle, "mem_per_sku": (rss - rss_idle) / max(tracked, 1),
        "state_bytes": WindowSpec(s.history_days, s.dedup_ids_per_sku).nbytes,
        "cold_start": t_ready - started, "forecaster": s.forecaster,
    }


def run_bench(
    settings: Settings, *, events: int, skus: int, days: int, output: Path, profile: Path | None = None,
    static: bool = True,
) -> dict:
    """Run every phase, print a table, write the Markdown report; return the figures.

    ``static``: the workers join as static group members, each under its own
    ``TRENDCAST_GROUP_INSTANCE_ID`` (the restarted one under the killed
    one's), as deploy/k8s runs them; else as dynamic members.

    With ``profile``, py-spy samples the worker during the throughput run and
    writes collapsed stacks there (``profile_summary`` reads them).
    """
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    s, env, run = prepare_run(settings)
    member = (lambda n: {**env, "TRENDCAST_GROUP_INSTANCE_ID": f"{run}-w{n}"}) if static else (lambda n: env)
    log = Path(".trendcast") / f"{run}.log"
    rss_idle = idle_rss(env, log, run)
    w, res = end_to_end(s, member(1), log, events=events, skus=skus, days=days, rss_idle=rss_idle,
                        console=console, profile=profile, of=6)
    m, tracked = w.metrics(), res["skus_tracked"]
    try:
        console.print("[bold]4/6[/] ingest latency under a steady trickle…")
        before = _latency_buckets(m, "trendcast_processing_latency_seconds")
        trickle = synth_events(4000, min(skus, 5000), 1, seed=2, start_day=20_000 + days)
        asyncio.run(_trickle(s.bootstrap, s.source_topics, trickle, rate=1000.0))
        w.wait(lambda m: consumed(m) >= events + len(trickle), 60)
        after = _latency_buckets(w.metrics(), "trendcast_processing_latency_seconds")
        delta = {le: after.get(le, 0) - before.get(le, 0) for le in after}
        p50, p99 = hist_quantile(delta, 0.5), hist_quantile(delta, 0.99)

        console.print("[bold]5/6[/] SIGKILL and recovery…")
        w.stop(signal.SIGKILL)
        restarted = time.monotonic()
        w = WorkerProc.start(member(1), log)
        t_rec, m2 = w.wait(
            lambda m: m.get("trendcast_ready", 0) == 1 and m.get("trendcast_skus_tracked", 0) >= tracked, 300
        )
        recovery = t_rec - restarted

        console.print("[bold]6/6[/] a second worker joins: partitions move…")
        joined = time.monotonic()
        w2 = WorkerProc.start(member(2), log)
        try:
            # The newcomer is ready once the group rebalanced and its partitions' tables are restored.
            _, m3 = w2.wait(lambda m: m.get("trendcast_ready", 0) == 1 and m.get("trendcast_skus_tracked", 0) > 0, 300)
            t_both, _ = w.wait(lambda m: m.get("trendcast_ready", 0) == 1, 300)
            rebalance, moved = t_both - joined, m3.get("trendcast_skus_tracked", 0.0)
        finally:
            w2.stop()
    finally:
        w.stop()

    res.update({
        "latency_p50": p50, "latency_p99": p99, "recovery": recovery,
        "recovered_skus": m2.get("trendcast_skus_tracked", 0.0),
        "rebalance": rebalance, "moved_skus": moved, "static": static,
    })
    table = Table(title="trendcast bench")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in _rows(res):
        table.add_row(label, value)
    Console().print(table)
    write_section(output, "worker", _report(res))
    console.print(f"wrote {output}")
    if profile is not None and profile.exists():
        prof = Table(title=f"worker profile (py-spy, {profile})")
        for col in ("function", "self", "inclusive"):
            prof.add_column(col, justify="left" if col == "function" else "right")
        for fn, own, inc in profile_summary(profile):
            prof.add_row(fn, f"{own:.1%}", f"{inc:.1%}")
        Console().print(prof)
    return res


def py_spy() -> str | None:
    """Path of the py-spy executable: next to this Python (a venv need not be activated), else on PATH."""
    return shutil.which("py-spy", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))


def _start_profiler(pid: int, path: Path) -> subprocess.Popen:
    path.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [py_spy() or "py-spy", "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--output", str(path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def profile_summary(path: Path, top: int = 15) -> list[tuple[str, float, float]]:
    """Top functions of a py-spy collapsed-stack file: ``(function, self share, inclusive share)``."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0] + ")" if " (" in f else f
                  for f in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
    ranked = sorted(incl, key=lambda f: -own.get(f, 0))[:top]
    return [(f, own.get(f, 0) / max(total, 1), incl[f] / max(total, 1)) for f in ranked]


async def _trickle(bootstrap: str, topics: tuple[str, str, str], events: list, rate: float) -> None:
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1, acks=1)
    await p.start()
    try:
        t0 = time.perf_counter()
        for i, (k, key, value) in enumerate(events):
            await p.send(topics[k], value, key=key)
            wait = t0 + i / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
        await p.flush()
    finally:
        await p.stop()


def _rows(r: dict) -> list[tuple[str, str]]:
    return [
        ("events / SKUs / days of event time", f"{r['events']:,} / {r['skus']:,} / {r['days']}"),
        ("producer rate (events/s)", f"{r['produce_rate']:,.0f}"),
        ("raw aiokafka consumer, median of 3 (events/s)",
         f"{r['raw_rate']:,.0f} ({' / '.join(f'{x:,.0f}' for x in r['raw_runs'])})"),
        ("worker end to end (events/s)", f"{r['worker_rate']:,.0f}"),
        ("worker / raw consumer", f"{r['ratio']:.3f}"),
        ("forecasts published", f"{r['forecasts']:,.0f}"),
        ("forecasts per event / per second of the run", f"{r['forecasts'] / r['events']:.2f} / "
                                                        f"{r['forecasts'] / r['run_s']:,.0f}"),
        ("forecast ticks' wall time, summed over partitions / the run's wall time (s)",
         f"{r['tick_s']:.1f} / {r['run_s']:.1f}"),
        ("SKU states written to the changelog", f"{r['changelog']:,.0f}"),
        ("SKUs tracked", f"{r['skus_tracked']:,.0f}"),
        ("worker memory growth per SKU (bytes)", f"{r['mem_per_sku']:,.0f}"),
        ("encoded state per SKU (bytes)", f"{r['state_bytes']:,}"),
        ("ingest latency p50 / p99 (ms)", f"{r['latency_p50'] * 1000:.1f} / {r['latency_p99'] * 1000:.1f}"),
        ("cold start to ready (s)", f"{r['cold_start']:.1f}"),
        ("restart after SIGKILL to ready, state recovered (s)", f"{r['recovery']:.1f}"),
        ("SKUs recovered", f"{r['recovered_skus']:,.0f}"),
        ("a second worker joins: both ready, moved state recovered (s)", f"{r['rebalance']:.1f}"),
        ("SKUs moved to the second worker", f"{r['moved_skus']:,.0f}"),
    ]


def write_section(path: Path, name: str, text: str) -> None:
    """Put ``text`` between the ``name`` markers of the Markdown report at ``path``, keeping the other sections.

    Each ``trendcast bench --part`` rewrites only its own section, so the
    worker and scoring figures can be refreshed apart.
    """
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + block + rest.split(end, 1)[1]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


def _report(r: dict) -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    lines = [
        "## Worker on the broker",
        "",
        "Written by `trendcast bench --part worker` (embedded Tansu broker, one worker process).",
        "",
        f"* date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"* machine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}",
        f"* command: `trendcast bench --part worker --events {r['events']} --skus {r['skus']} --days {r['days']}"
        f"{'' if r.get('static', True) else ' --membership dynamic'}`",
        "* group membership: " + ("static, each worker under its own `TRENDCAST_GROUP_INSTANCE_ID` (the restarted "
                                  "one under the killed one's), as deploy/k8s runs them" if r.get("static", True)
                                  else "dynamic (no `TRENDCAST_GROUP_INSTANCE_ID`)"),
        f"* forecaster: {r.get('forecaster', '?')}",
        "",
        "| measure | value |",
        "|---|---:|",
        *[f"| {a} | {b} |" for a, b in _rows(r)],
        "",
        "How each figure is taken: see the docstring of `stream_app/cli/bench.py`. Ingest latency is the",
        "wall time from a record's Kafka timestamp to its batch being applied, observed on the oldest",
        "record of each batch (an upper bound per batch), quantiles interpolated from histogram buckets.",
        "",
    ]
    return "\n".join(lines)
