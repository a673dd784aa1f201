"""What the explorer knows: forecast, stage-alert and catalog records folded into per-SKU history (pure).

Everything here is rebuilt from the topics alone, so the page needs no store
of its own. Daily units come from the forecasts' ``observed.units_1d``: a
SKU is forecast at the close of every day while it is active, and a day
without a forecast is a day without any of its events, so zero units. That
is also what "what then sold" means for a past forecast: the sum of those
daily units over the days its horizon covered.

Records are plain dicts as the topics hold them (JSON-decoded); a record
that is not what its schema says is counted and skipped, never raised.
"""

from __future__ import annotations

import heapq
import sys
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from stream_app.core.windows import DAY_MS

HORIZONS = (1, 7, 14)
QUANTILES = ("p10", "p50", "p90")


@dataclass(frozen=True, slots=True)
class Forecast:
    """One published forecast, as the explorer keeps it (``day``: the first day it forecasts, as_of // DAY)."""

    day: int
    as_of: int
    active: bool
    stage: str
    # p10, p50, p90 of each horizon in HORIZONS' order, flat: a few hundred bytes less per forecast kept
    quantiles: tuple[float, ...]
    units_1d: float  # units sold on day - 1, the day that closed
    model: str
    calibrated: bool

    def q(self, horizon: int) -> tuple[float, float, float]:
        """(p10, p50, p90) of the units sold over the ``horizon`` days after the forecast."""
        i = 3 * HORIZONS.index(horizon)
        return self.quantiles[i], self.quantiles[i + 1], self.quantiles[i + 2]


@dataclass(frozen=True)
class Outcome:
    """A past forecast whose horizon has passed, against the units then sold over it."""

    day: int
    p10: float
    p50: float
    p90: float
    actual: float


@dataclass(frozen=True)
class SkuView:
    """Everything the SKU page shows, as plain data."""

    sku: str
    catalog: dict | None
    daily: list[tuple[int, float]]  # (day, units), every day from the first to the last known one
    latest: Forecast
    outcomes: dict[int, list[Outcome]]  # horizon -> past forecasts that can be judged, oldest first
    stages: list[tuple[int, int, str]]  # runs of the forecasts' daily stage: (first day, last day, stage)
    alerts: list[dict]  # this SKU's alerts, oldest first


def day_of(ms: int) -> int:
    """The UTC day number of an epoch-ms time."""
    return ms // DAY_MS


@dataclass
class Explorer:
    """Folds the three topics' records into per-SKU history; ask :meth:`sku` for one SKU's view.

    ``keep_days``: forecasts kept per SKU (the oldest are dropped), which
    bounds memory to SKUs x keep_days; ``keep_alerts``: latest alerts kept
    for the front page.
    """

    keep_days: int = 70
    keep_alerts: int = 50
    forecasts: dict[str, dict[int, Forecast]] = field(default_factory=dict)
    alerts: dict[str, dict[str, dict]] = field(default_factory=dict)  # sku -> alert id -> alert
    catalog: dict[str, dict] = field(default_factory=dict)
    recent: deque = field(default_factory=deque)  # the latest alerts (by as_of), newest first
    counts: dict[str, int] = field(default_factory=lambda: {"forecasts": 0, "alerts": 0, "catalog": 0, "skipped": 0})
    last_day: int | None = None  # the newest forecast day seen on any SKU

    def add(self, kind: str, value: object) -> None:
        """Fold one record of ``kind`` (``forecasts``, ``alerts`` or ``catalog``); a malformed one is skipped."""
        try:
            {"forecasts": self._forecast, "alerts": self._alert, "catalog": self._catalog}[kind](value)
        except (KeyError, TypeError, ValueError, AttributeError):
            self.counts["skipped"] += 1
            return
        self.counts[kind] += 1

    def _forecast(self, v: dict) -> None:
        h = v["horizons"]
        f = Forecast(day=day_of(int(v["as_of"])), as_of=int(v["as_of"]), active=bool(v["active"]),
                     stage=sys.intern(str(v["stage"])), quantiles=tuple(float(h[str(n)][q]) for n in HORIZONS
                                                                     for q in QUANTILES),
                     units_1d=float(v["observed"]["units_1d"]), model=sys.intern(str(v["model"]["name"])),
                     calibrated=bool(v.get("calibrated", False)))
        sku = _sku(v)
        days = self.forecasts.setdefault(sku, {})
        # A repeat (at-least-once) carries the same numbers: keeping the last one is keeping it once.
        days[f.day] = f
        if len(days) > self.keep_days:
            for d in heapq.nsmallest(len(days) - self.keep_days, days):
                del days[d]
        self.last_day = f.day if self.last_day is None else max(self.last_day, f.day)

    def _alert(self, v: dict) -> None:
        sku, aid = _sku(v), str(v["id"])
        # The fields the page prints, as numbers and text: a bad one is skipped here, not at every page view.
        v = {**v, "as_of": int(v["as_of"]), "stage": str(v["stage"]), "confidence": float(v.get("confidence") or 0),
             "lead_time": {k: float(x) for k, x in (v.get("lead_time") or {}).items()}}
        mine = self.alerts.setdefault(sku, {})
        if aid in mine:
            return
        mine[aid] = v
        self.recent.append(v)
        if len(self.recent) > 4 * self.keep_alerts:  # keep the newest by as_of, trimmed now and then
            self.recent = deque(sorted(self.recent, key=lambda a: a["as_of"], reverse=True)[:self.keep_alerts])

    def _catalog(self, v: dict) -> None:
        str(v["title"])
        self.catalog[_sku(v)] = v

    def latest_alerts(self) -> list[dict]:
        """The newest alerts over all SKUs (by as_of, then SKU), at most ``keep_alerts``."""
        return sorted(self.recent, key=lambda a: (-a["as_of"], a["sku"]))[:self.keep_alerts]

    def search(self, text: str, limit: int = 20) -> list[str]:
        """SKUs with a forecast whose id contains ``text`` (case-insensitive); those starting with it first."""
        t = text.strip().lower()
        if not t:
            return []
        hits = [s for s in self.forecasts if t in s.lower()]
        return sorted(hits, key=lambda s: (not s.lower().startswith(t), s))[:limit]

    def sku(self, sku: str) -> SkuView | None:
        """The view of ``sku``; ``None`` when no forecast of it has been read."""
        days = self.forecasts.get(sku)
        if not days:
            return None
        series = sorted(days.values(), key=lambda f: f.day)
        latest = series[-1]
        # Days are known up to the last closed one; a SKU that went quiet sold nothing since, as far as
        # event time has gone on other SKUs.
        known_to = latest.day - 1 if latest.active else max(latest.day, self.last_day or latest.day) - 1
        daily = daily_units(series, known_to)
        alerts = sorted(self.alerts.get(sku, {}).values(), key=lambda a: (a["as_of"], a.get("kind", "")))
        return SkuView(sku=sku, catalog=self.catalog.get(sku), daily=daily, latest=latest,
                       outcomes={h: outcomes(series, daily, h) for h in HORIZONS},
                       stages=stage_runs(series), alerts=alerts)


def _sku(v: dict) -> str:
    sku = v["sku"]
    if not isinstance(sku, str) or not sku:
        raise ValueError("no sku")
    return sku


def daily_units(series: Iterable[Forecast], known_to: int) -> list[tuple[int, float]]:
    """``(day, units)`` for every day from the first forecast's closed day to ``known_to``; gaps are 0.

    >>> f = lambda day, u: Forecast(day, day * DAY_MS, True, "growth", (), u, "m", True)
    >>> daily_units([f(10, 2.0), f(13, 5.0)], 12)
    [(9, 2.0), (10, 0.0), (11, 0.0), (12, 5.0)]
    """
    sold = {f.day - 1: f.units_1d for f in series}
    if not sold:
        return []
    return [(d, sold.get(d, 0.0)) for d in range(min(sold), known_to + 1)]


def outcomes(series: Iterable[Forecast], daily: list[tuple[int, float]], horizon: int) -> list[Outcome]:
    """Past forecasts whose ``horizon`` days are all known in ``daily``, with the units sold over them."""
    if not daily:
        return []
    first, units = daily[0][0], [u for _, u in daily]
    last = first + len(units) - 1
    out = []
    for f in series:
        if f.active and first <= f.day and f.day + horizon - 1 <= last:
            p10, p50, p90 = f.q(horizon)
            start = f.day - first
            out.append(Outcome(f.day, p10, p50, p90, sum(units[start:start + horizon])))
    return out


def stage_runs(series: Iterable[Forecast]) -> list[tuple[int, int, str]]:
    """The forecasts' stage as runs ``(first day, last day, stage)``, oldest first (inactive days left out).

    >>> f = lambda day, s: Forecast(day, 0, True, s, (), 0.0, "m", True)
    >>> stage_runs([f(1, "growth"), f(2, "growth"), f(3, "maturity")])
    [(1, 2, 'growth'), (3, 3, 'maturity')]
    """
    runs: list[tuple[int, int, str]] = []
    for f in series:
        if not f.active:
            continue
        if runs and runs[-1][2] == f.stage and runs[-1][1] == f.day - 1:
            runs[-1] = (runs[-1][0], f.day, f.stage)
        else:
            runs.append((f.day, f.day, f.stage))
    return runs
