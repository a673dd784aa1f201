"""The worker's day loop for the drift scenarios: the worker's own tick, replayed offline, its messages as arrays.

``trendcast evaluate --scenarios`` scores what a worker publishes around
each scenario's events, so it runs the worker's day step itself
(:class:`~stream_app.data.offline_worker.OfflineWorker`: the ingest, and
:func:`stream_app.core.ticks.run_tick` per closed day and partition, with the
rules built from the settings) and reads back the forecast and stage-alert
messages, as a consumer would. There is no second implementation of the day
step to keep equal to the worker's.

It replays twice, with and without calibration: calibration changes what is
published, never the model's input or its stage probabilities, so both runs
forecast the same SKUs on the same days and raise the same stage alerts, and
the uncalibrated run publishes the model's own quantiles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import orjson

from models.interface import HORIZONS, QUANTILES, STAGES
from models.panel import Panel, targets_at
from stream_app.data.offline_worker import OfflineWorker
from stream_app.core.scorer import Scorer
from stream_app.settings import Settings
from stream_app.core.ticks import TickResult
from stream_app.core.windows import DAY_MS

Rows = Callable[[], Iterable[tuple[str, dict]]]  # a fresh pass over the stream's (topic kind, event) rows


@dataclass(frozen=True)
class DayForecasts:
    """Which SKUs were forecast on which replayed day.

    ``days`` ``(D,)`` closed days (days since 1970-01-01); ``forecast``
    ``(D, n)`` whether the SKU's forecast was published at the end of that
    day; ``fallback_rows``: forecasts the EWMA baseline gave because the
    model's were not finite (the messages' ``model.fallback_reason``).
    """

    days: np.ndarray
    forecast: np.ndarray
    fallback_rows: int = 0


@dataclass(frozen=True)
class StageChanges:
    """Stage changes, one per element: panel row (SKU), day, stage before and after (indices into STAGES)."""

    rows: np.ndarray
    days: np.ndarray
    previous: np.ndarray
    stage: np.ndarray

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class Published:
    """What one replay published: ``quantiles`` ``(D, n, len(HORIZONS), 3)`` units (NaN: not forecast), drift resets."""

    quantiles: np.ndarray
    drifts: list[tuple[int, str]] = field(default_factory=list)  # (day, category) the detector fired


@dataclass(frozen=True)
class Replay:
    """Both replays of a stream: forecast days, what each run published, the stage changes and ``(D, n)`` stages held."""

    forecasts: DayForecasts
    runs: dict[str, Published]
    alerts: StageChanges
    tracked: np.ndarray


class _Collector:
    """Turns one run's tick results into arrays over ``days`` × ``skus``."""

    def __init__(self, skus: list[str], days: np.ndarray, on_day: Callable[[int, int], None] | None) -> None:
        self.index = {s: i for i, s in enumerate(skus)}
        self.first = int(days[0])
        self.n_days = len(days)
        shape = (self.n_days, len(skus))
        self.published = Published(np.full((*shape, len(HORIZONS), len(QUANTILES)), np.nan))
        self.forecast = np.zeros(shape, dtype=bool)
        self.stage = np.full(shape, -1, dtype=np.int64)
        self.changes: list[tuple[int, int, int, int]] = []
        self.fallbacks = 0
        self.on_day = on_day
        self.last_reported = -1

    def __call__(self, partition: int, day: int, result: TickResult) -> None:
        i = day - self.first
        if not 0 <= i < self.n_days:
            return
        keys = [str(h) for h in HORIZONS]
        for _, value in result.forecasts:
            m = orjson.loads(value)
            row = self.index.get(m["sku"])
            if row is None:
                continue
            hz = m["horizons"]
            self.published.quantiles[i, row] = [[hz[k]["p10"], hz[k]["p50"], hz[k]["p90"]] for k in keys]
            self.forecast[i, row] = True
            self.stage[i, row] = STAGES.index(m["stage"])
            self.fallbacks += "fallback_reason" in m["model"]
        self.published.drifts += [(day, g) for g in result.drifted]
        for _, value in result.alerts:
            a = orjson.loads(value)
            row = self.index.get(a["sku"])
            if a["kind"] == "stage_change" and row is not None:
                self.changes.append((row, a["as_of"] // DAY_MS - 1, STAGES.index(a["previous_stage"]),
                                     STAGES.index(a["stage"])))
        if self.on_day is not None and i > self.last_reported:
            self.last_reported = i
            self.on_day(i, day)

    def tracked(self) -> np.ndarray:
        """``(D, n)`` the stage each SKU's consumer holds at the end of each day (-1: none yet)."""
        out = self.stage.copy()
        for i in range(1, self.n_days):
            out[i] = np.where(self.forecast[i], out[i], out[i - 1])
        return out


def replay(settings: Settings, rows: Rows, skus: list[str], days: np.ndarray, scorer: Scorer,
           on_day: Callable[[int, int], None] | None = None) -> Replay:
    """Replay the stream through the worker's day step with and without calibration; see the module docstring.

    ``rows()`` yields the stream's rows in send order, afresh on each call;
    ``skus``: the SKUs to keep (panel rows); ``days``: the consecutive closed
    days to keep, from the stream's first; ``on_day(i, day)``: progress of
    the calibrated run. Other settings (tracker, evidence, calibration
    rules, partitions) are the worker's, from ``settings``.
    """
    runs: dict[str, _Collector] = {}
    for name, calibrate in (("calibrated", True), ("uncalibrated", False)):
        run = _Collector(skus, np.asarray(days), on_day if calibrate else None)
        OfflineWorker(settings.model_copy(update={"calibration": calibrate}), scorer).run(rows(), run)
        runs[name] = run
    main = runs["calibrated"]
    cols = np.array(sorted(main.changes, key=lambda c: (c[1], c[0])), dtype=np.int64).reshape(-1, 4)
    return Replay(DayForecasts(np.asarray(days), main.forecast, main.fallbacks),
                  {name: run.published for name, run in runs.items()},
                  StageChanges(*(cols[:, k] for k in range(4))), main.tracked())


def outcomes(panel: Panel, days: np.ndarray) -> np.ndarray:
    """``(D, n, len(HORIZONS))`` units sold over the ``h`` days after each day; NaN past the panel.

    :func:`models.panel.targets_at`, day by day.
    """
    return np.stack([targets_at(panel, int(d)) for d in days]).astype(np.float64)
