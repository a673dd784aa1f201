"""Launch demand before the first order: forecasts for catalog records that have no event yet.

A SKU whose catalog record names its launch (``launched_at``) and that has
had no event has no window, so the model never sees it. At the end of the
day before its launch day a tick forecasts it from what the launches
nearest by text sold from their launch days (:mod:`models.launch_prior`),
flagged ``cold_start``, stage ``introduction``: a planner sees launch
demand before the first order. With its first event the SKU has a window
and is the model's (or, with ``cold_start``, the first-sale launch prior's
until it sells). If its launch day closes without any event, it gets one
last forecast of zeros (``active: false``), as a SKU with a window does
when it goes quiet: a product silent since its launch is not a fresh launch
(on the simulator, forecasting such SKUs from the prior for weeks after
their launch gave a 7-day WAPE of 6.6 against their sales; zeros give 1:
docs/MODEL.md, "Product text").
A launch further ahead is not forecast: the prior knows the days from a
launch on, not the days before it.

The reference is not the first-sale launches the ``cold_start`` forecasts
use: a product counted from its first sale has sold by definition, while
one counted from the day its catalog names may sell nothing for weeks. So
it is what the partition's catalog launches sold from their launch days,
zeros included (:attr:`stream_app.core.ticks.TickResult.catalog_reference`).

Pure: the caller passes the partition's launch days, its windows and the
text embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from models.interface import HORIZONS, QUANTILES, STAGES, nested_horizons
from models.launch_prior import LAUNCH_DAYS, LAUNCH_K, MIN_LAUNCHES, LaunchReference
from stream_app.core.messages import forecast_messages
from stream_app.core.scorer import text_features
from stream_app.core.windows import DAY_MS, NO_DAY, StateBatch, WindowSpec

LAUNCH_MODEL = {"name": "launch-prior", "version": f"knn{LAUNCH_K}"}  # what a cold-start forecast names as its model
INTRODUCTION = STAGES.index("introduction")
NOTHING_SEEN = {"units_1d": 0.0, "units_7d": 0.0, "units_28d": 0.0, "clicks_7d": 0.0}


def launch_day(launched_at_ms: int | None) -> int | None:
    """The day (days since 1970-01-01 UTC) of a catalog record's ``launched_at`` (epoch ms); None when unknown."""
    return None if launched_at_ms is None else int(launched_at_ms) // DAY_MS


class Due(NamedTuple):
    """A partition's catalog-only SKUs at a tick: to forecast, to retire, and closed launches that sold nothing."""

    live: list[bytes]
    gone: list[bytes]
    silent: list[bytes]
    silent_days: list[int]


def due(launch_days: Mapping[bytes, int], windows: Mapping[bytes, bytes], spec: WindowSpec, as_of_day: int) -> Due:
    """The SKUs without events to forecast at the end of ``as_of_day`` from their launch alone, and the rest.

    ``launch_days``: SKU -> launch day of a partition's catalog records;
    ``windows``: the SKUs' window states (a SKU with an event by
    ``as_of_day`` is the model's; one whose first events came later, as
    the launch day's first clicks often do while the day before is being
    forecast, is not). Forecast (``live``): a launch on the next day;
    retired (``gone``): a launch on ``as_of_day`` itself, which closed
    without an event; ``silent``: launches whose first 14 days have closed
    within the window's ``spec.history_days`` without an event, part of
    what launches sell (zeros), with their launch days.
    """
    out = Due([], [], [], [])
    seen = []
    for key, day in launch_days.items():
        if day == as_of_day + 1 or day == as_of_day:
            seen.append(key)
        elif key not in windows and LAUNCH_DAYS - 1 <= as_of_day - day <= spec.history_days - 1:
            out.silent.append(key)
            out.silent_days.append(day)
    held = [k for k in seen if k in windows]
    if held:
        last = StateBatch.from_blobs([windows[k] for k in held], spec).last_active(as_of_day)
        busy = {k for k, d in zip(held, last.tolist()) if d != NO_DAY}
        seen = [k for k in seen if k not in busy]
    for key in sorted(seen):
        (out.live if launch_days[key] == as_of_day + 1 else out.gone).append(key)
    return out


def launch_step(todo: Due, embeddings: Mapping[bytes, bytes], reference: LaunchReference | None,
                as_of_day: int) -> tuple[list[tuple[bytes, bytes]], int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The forecast messages of ``todo``'s SKUs, how many are launch forecasts, and the silent launches.

    Only SKUs with a text embedding: without one there is nothing to find
    neighbours by, and none was forecast. No launch forecast while
    ``reference`` (the catalog's launches the partition saw, from their
    launch day) holds fewer than :data:`MIN_LAUNCHES`. The silent launches
    come back as (launch days, texts, zero totals) for the next reference.
    """
    live = todo.live if reference is not None and len(reference) >= MIN_LAUNCHES else []
    text, has = text_features(live + todo.silent, embeddings)
    n_live = len(live)
    quiet = np.flatnonzero(has[n_live:])
    silent = (np.asarray(todo.silent_days, dtype=np.int64)[quiet], text[n_live:][quiet],
              np.zeros((len(quiet), len(HORIZONS))))
    text, has = text[:n_live], has[:n_live]
    live = [k for k, h in zip(live, has.tolist()) if h]
    gone = [k for k in todo.gone if k in embeddings]
    keys = live + gone
    if not keys:
        return [], 0, silent
    quant = np.zeros((len(keys), len(HORIZONS), len(QUANTILES)))
    if live:
        quant[: len(live)] = np.round(nested_horizons(reference.quantiles(text[has])), 4)
    n = len(keys)
    messages = forecast_messages(
        keys, quant.reshape(n, -1).tolist(), [True] * len(live) + [False] * len(gone), [INTRODUCTION] * n,
        [[float(i == INTRODUCTION) for i in range(len(STAGES))]] * n, [LAUNCH_MODEL] * n, False, [NOTHING_SEEN] * n,
        set(range(len(live))), (as_of_day + 1) * DAY_MS)
    return messages, len(live), silent
