"""Score the launch forecasts a worker publishes for catalog records with no event yet.

Replays an event folder (``trendcast simulate --out ...``: catalog records
name ``launched_at``) through the worker's day loop with the settings of
the environment (``TRENDCAST_*``), as ``trendcast evaluate`` does, and
scores every published ``cold_start`` forecast of a SKU without a window
(the day before its launch) against the units it sold over the next 1, 7
and 14 days. The alternative a consumer has without them is holding
nothing: a forecast of 0 (WAPE 1, pinball Σρ/Σy 0.5).

    python examples/launch_forecasts_probe.py /tmp/sim-cs32 2024-10-01 2025-01-16
"""

from __future__ import annotations

import collections
import datetime as dt
import sys

import numpy as np
import orjson

from models.interface import HORIZONS, QUANTILES
from stream_app.data.offline_worker import published
from stream_app.data.replay import EventFiles
from stream_app.settings import load_settings
from stream_app.worker.scoring import build_scorer


def day(text: str) -> int:
    """Days since 1970-01-01 of an ISO date."""
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.timezone.utc).timestamp() // 86_400)


def main(folder: str, since: str, until: str) -> None:
    lo, hi = day(since), day(until)
    settings = load_settings(forecaster="model")
    by_day, _ = published(settings, EventFiles(folder).rows(), set(range(lo, hi + 1)), scorer=build_scorer(settings))
    sold: dict[tuple[str, int], float] = collections.defaultdict(float)
    with open(f"{folder}/orders.jsonl", "rb") as f:
        for line in f:
            o = orjson.loads(line)
            sold[(o["sku"], o["ts"] // 86_400_000)] += o["qty"]
    ys, qs = [], []
    for d, messages in by_day.items():
        for m in messages:
            # a launch forecast: the launch prior's, of a SKU with nothing observed, whose 14 days are in the data
            if m.get("cold_start") and m["observed"]["clicks_7d"] == 0 and m["observed"]["units_28d"] == 0 \
                    and d + max(HORIZONS) <= hi:
                ys.append([sum(sold.get((m["sku"], d + k), 0.0) for k in range(1, h + 1)) for h in HORIZONS])
                qs.append([[m["horizons"][str(h)][p] for p in ("p10", "p50", "p90")] for h in HORIZONS])
    y, q = np.array(ys), np.array(qs)
    tau = np.array(QUANTILES)
    print(f"launch forecasts scored: {len(y)}")
    for j, h in enumerate(HORIZONS):
        yy, qq = y[:, j], q[:, j]
        units = yy.sum()
        d = yy[:, None] - qq
        wape = np.abs(yy - qq[:, 1]).sum() / units if units else float("nan")
        pinball = np.maximum(tau * d, (tau - 1) * d).mean(axis=1).sum() / units if units else float("nan")
        cover = ((yy >= qq[:, 0]) & (yy <= qq[:, 2])).mean()
        print(f"{h:>2} d: units {units:,.0f} (zero share {np.mean(yy == 0):.2f}); WAPE {wape:.3f} (holding nothing: "
              f"1.000), pinball {pinball:.3f} (0.500), p10-p90 coverage {cover:.2f}; median p50 {np.median(qq[:, 1]):.1f}, "
              f"median units {np.median(yy):.1f}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
