"""The edge of ``trendcast forecast``: a dataset and as-of dates in, the forecasts a worker would have published out.

For each as-of date D the file gets the forecast messages a worker
publishes when day D − 1 closes (their ``as_of`` is D at 00:00 UTC), from
the worker's own day loop replayed offline (:mod:`stream_app.data.offline_worker`):
same ingest, same calibration per partition, same model and settings
(``TRENDCAST_*``). Planners backfill with it; anyone can score the product
with it.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from stream_app.requests import DAY_MS, BadRequest, day_of, iso
from stream_app.settings import Settings

# Read this far past the last as-of date: a day closes once the data passes its end (plus grace), and a jump
# in event time (a shop closed over a holiday) is confirmed by the events after it, as the worker sees them.
CLOSE_DAYS = 14


def as_of_days(text: str) -> list[int]:
    """``YYYY-MM-DD[,YYYY-MM-DD...]`` as the days whose close each date's forecasts are made at (date − 1)."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        out.append(day_of(part, "--as-of") - 1)
    if not out:
        raise BadRequest("--as-of needs at least one date, e.g. --as-of 2011-07-01")
    return sorted(set(out))


def run_forecast(settings: Settings, data: Path, source: str, days: list[int], out: Path) -> list[str]:
    """Replay ``data`` through the worker's day loop; write the forecasts made at the close of ``days``. Lines to print."""
    from stream_app.data.offline_worker import published_forecasts
    from stream_app.data.replay import ADAPTERS
    from stream_app.worker.scoring import build_scorer

    if source not in ADAPTERS:
        raise BadRequest(f"unknown --source {source!r}; one of: {', '.join(ADAPTERS)}")
    if not data.exists():
        raise BadRequest(f"no such file or folder: {data}")
    until_ms = (max(days) + 1 + CLOSE_DAYS) * DAY_MS
    adapter = ADAPTERS[source](data, until_ms=until_ms)
    try:
        by_day = published_forecasts(settings, adapter.rows(), set(days), scorer=build_scorer(settings))
    except (ValueError, OSError) as exc:
        raise BadRequest(f"{data}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    lines, written = [], 0
    with open(out, "wb") as f:
        for day in days:
            for m in sorted(by_day.get(day, []), key=lambda m: m["sku"]):
                f.write(orjson.dumps(m) + b"\n")
                written += 1
            if day not in by_day:
                shown = iso(day + 1)
                lines.append(f"no forecasts as of {shown}: the data ends before day {shown} closes, "
                             "or holds no events before it")
    lines.append(f"wrote {written:,} forecasts for {len(days) - sum(d not in by_day for d in days)} of {len(days)} "
                 f"as-of dates to {out}")
    return lines
