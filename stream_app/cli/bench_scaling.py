"""``trendcast bench --part scaling``: how far one worker goes, from 10k to a million SKUs in one run.

For each size the bench's phases 1-3 (:func:`stream_app.cli.bench.end_to_end`)
run on topics of their own: ``events_per_sku`` events per SKU over the
same days of event time are produced, read by the raw consumer and then
by one worker end to end. Each size's worker starts empty, so its memory
growth is its own SKUs' (an idle worker's resident size, measured once, is
subtracted). The tick's share is the forecast ticks' wall time, summed over
partitions, over the run's wall time: above 1 the partitions' ticks
overlapped, and forecasting, not the ingest, set the pace.
"""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path

from stream_app.settings import Settings


def parse_sizes(text: str) -> list[int]:
    """SKU counts from ``"10000,100000,1000000"``; raises ``ValueError`` with what is wrong."""
    try:
        sizes = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--scaling-skus {text!r}: give SKU counts separated by commas, e.g. 10000,100000") from None
    if not sizes or min(sizes) < 100:
        raise ValueError(f"--scaling-skus {text!r}: give one or more SKU counts of at least 100")
    return sorted(set(sizes))


def run_scaling(settings: Settings, *, sizes: list[int], events_per_sku: int, days: int, output: Path) -> list[dict]:
    """Phases 1-3 of the worker bench at each of ``sizes`` SKUs; print and write the ``scaling`` section."""
    from rich.console import Console
    from rich.table import Table

    from stream_app.cli.bench import idle_rss, end_to_end, prepare_run, write_section

    console = Console(stderr=True)
    rows = []
    rss_idle = None
    for skus in sizes:
        console.print(f"[bold]{skus:,} SKUs[/]")
        s, env, run = prepare_run(settings)
        log = Path(".trendcast") / f"{run}.log"
        if rss_idle is None:
            rss_idle = idle_rss(env, log, run)
        w, res = end_to_end(s, env, log, events=skus * events_per_sku, skus=skus, days=days, rss_idle=rss_idle,
                            console=console, of=3)
        w.stop()
        rows.append(res)
    table = Table(title="trendcast bench --part scaling")
    for col in HEADER:
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(*row(r))
    Console().print(table)
    write_section(output, "scaling", report(rows, events_per_sku, days))
    console.print(f"wrote {output}")
    return rows


HEADER = ("SKUs", "events", "raw consumer (events/s)", "worker (events/s)", "worker / raw",
          "forecasts per event", "ticks' wall time / run's (s)", "tick share", "memory growth (MB)",
          "per SKU (bytes)")


def row(r: dict) -> tuple[str, ...]:
    """One size's cells, in :data:`HEADER`'s order."""
    return (f"{r['skus_tracked']:,.0f}", f"{r['events']:,}", f"{r['raw_rate']:,.0f}", f"{r['worker_rate']:,.0f}",
            f"{r['ratio']:.3f}", f"{r['forecasts'] / r['events']:.2f}", f"{r['tick_s']:.1f} / {r['run_s']:.1f}",
            f"{r['tick_s'] / r['run_s']:.2f}", f"{r['rss_growth'] / 1e6:,.0f}", f"{r['mem_per_sku']:,.0f}")


def report(rows: list[dict], events_per_sku: int, days: int) -> str:
    """The Markdown ``scaling`` section of docs/BENCHMARKS.md."""
    sizes = ",".join(str(r["skus"]) for r in rows)
    return "\n".join([
        "## From 10k to a million SKUs, one run",
        "",
        "Written by `trendcast bench --part scaling` (embedded Tansu broker; per size: produce, the raw",
        "consumer's median of 3 reads, one worker end to end, each size on topics of its own).",
        "",
        f"* date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"* machine: {os.cpu_count()} cores, Python {platform.python_version()}",
        f"* command: `trendcast bench --part scaling --scaling-skus {sizes} --events-per-sku {events_per_sku} "
        f"--days {days}`",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---:|" * len(HEADER),
        *["| " + " | ".join(row(r)) + " |" for r in rows],
        "",
        "Tick share: the forecast ticks' wall time, summed over partitions, over the run's; above 1 the",
        "partitions' ticks overlapped and forecasting set the pace (every closed day forecasts every active",
        "SKU). Memory growth: the worker's resident size beyond an idle worker's, after the last flush.",
        "",
    ])
