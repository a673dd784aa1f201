"""``trendcast demo``: simulated events through a real worker, forecasts and alerts on screen.

The events come from the lifecycle simulator (:mod:`stream_app.sim`).

The worker runs as its own process (as in production); this process
produces the simulated catalogue and events, paced by event time, and reads
the ``forecasts`` and ``stage-alerts`` topics back with a plain consumer.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import deque
from datetime import datetime, timezone

import orjson
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from stream_app.worker.broker import free_port
from stream_app.settings import Settings
from stream_app.core.windows import DAY_MS


def _fmt_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d")


class Board:
    """What the demo shows: the latest forecast per SKU and the latest alerts."""

    def __init__(self) -> None:
        self.latest: dict[str, dict] = {}
        self.alerts: deque = deque(maxlen=8)
        self.n_forecasts = 0
        self.n_alerts = 0
        self.sent = 0
        self.event_day = ""

    def add(self, topic_kind: str, value: dict) -> None:
        if topic_kind == "forecasts":
            self.latest[value["sku"]] = value
            self.n_forecasts += 1
        else:
            self.alerts.appendleft(value)
            self.n_alerts += 1

    def render(self) -> Group:
        t = Table(title=f"forecasts (latest per SKU; {self.n_forecasts:,} published; events sent {self.sent:,}, "
                        f"event time {self.event_day})", expand=False)
        for col in ("sku", "as of", "stage", "next 1 d p50", "next 7 d p10–p90", "next 14 d p50"):
            t.add_column(col, justify="right" if "next" in col else "left")
        top = sorted(self.latest.values(), key=lambda f: -f["horizons"]["7"]["p50"])[:12]
        for f in top:
            h = f["horizons"]
            t.add_row(f["sku"], _fmt_day(f["as_of"] - 1), f["stage"], f"{h['1']['p50']:.1f}",
                      f"{h['7']['p10']:.0f}–{h['7']['p90']:.0f}", f"{h['14']['p50']:.1f}")
        a = Table(title=f"stage-change alerts ({self.n_alerts:,})", expand=False)
        for col in ("sku", "as of", "from → to", "confidence", "7 d demand p50/p90"):
            a.add_column(col)
        for x in self.alerts:
            a.add_row(x["sku"], _fmt_day(x["as_of"] - 1), f"{x['previous_stage']} → {x['stage']}",
                      f"{x['confidence']:.2f}", f"{x['lead_time']['p50']:.0f} / {x['lead_time']['p90']:.0f}")
        return Group(t, a)


async def _produce(settings: Settings, sim, speed: float, board: Board) -> None:
    import itertools

    from stream_app.worker.send import send_events, topic_names

    def shown(kind: str, value: dict) -> None:
        if kind != "catalog":
            board.sent += 1
            board.event_day = _fmt_day(value["ts"])

    items = itertools.chain((("catalog", r) for r in sim.catalog()), sim.events())
    await send_events(settings.bootstrap, items, topic_names(settings), speedup=speed, on_sent=shown)


async def _consume(settings: Settings, board: Board) -> None:
    from aiokafka import AIOKafkaConsumer

    kinds = {settings.topic_forecasts: "forecasts", settings.topic_alerts: "alerts"}
    c = AIOKafkaConsumer(*kinds, bootstrap_servers=settings.bootstrap, group_id=None, auto_offset_reset="earliest")
    await c.start()
    try:
        while True:
            batch = await c.getmany(timeout_ms=500)
            for tp, records in batch.items():
                for r in records:
                    board.add(kinds[tp.topic], orjson.loads(r.value))
    finally:
        await c.stop()


def run_demo(settings: Settings, *, duration: float | None, skus: int, days: int, speed: float, seed: int) -> None:
    """Run the demo until ``duration`` seconds pass (or Ctrl-C); the worker is stopped on the way out."""
    from stream_app.worker.runner import prepare_broker
    from stream_app.sim import Simulator

    asyncio.run(prepare_broker(settings))
    today = int(time.time() * 1000) // DAY_MS
    # The lifecycle simulator, every scenario on, ending today.
    gen = Simulator(n_skus=skus, days=days, start_ms=(today - days) * DAY_MS, seed=seed)
    port = settings.metrics_port and free_port()
    env = {**os.environ, "TRENDCAST_BROKER": settings.broker, "TRENDCAST_WEB_PORT": "0",
           "TRENDCAST_METRICS_PORT": str(port), "TRENDCAST_LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen([sys.executable, "-m", "stream_app.cli", "worker"], env=env)
    console = Console()
    console.print(f"[bold]trendcast demo[/]: {skus} SKUs, {days} days of events at {speed:,.0f}x; "
                  f"worker pid {worker.pid}" + (f", metrics on http://127.0.0.1:{port}/metrics" if port else ""))
    board = Board()
    try:
        asyncio.run(_main(settings, gen, speed, board, duration, console, worker))
    except KeyboardInterrupt:
        pass
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
        console.print(f"done: {board.sent:,} events sent, {board.n_forecasts:,} forecasts and "
                      f"{board.n_alerts:,} stage alerts received")


async def _main(settings, gen, speed, board, duration, console, worker) -> None:
    tasks = [asyncio.create_task(_produce(settings, gen, speed, board)),
             asyncio.create_task(_consume(settings, board))]
    deadline = None if duration is None else time.monotonic() + duration
    live = console.is_terminal
    last_print = 0.0
    try:
        with Live(board.render(), console=console, refresh_per_second=2, transient=False) if live else _nullctx() as lv:
            while deadline is None or time.monotonic() < deadline:
                if worker.poll() is not None:
                    raise SystemExit(f"trendcast: the worker exited with code {worker.returncode}")
                if lv is not None:
                    lv.update(board.render())
                elif time.monotonic() - last_print > 5:
                    last_print = time.monotonic()
                    console.print(board.render())
                await asyncio.sleep(0.5)
        if not live:
            console.print(board.render())
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _nullctx:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False
