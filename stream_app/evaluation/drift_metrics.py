"""Scores of a day-by-day replay around known events: coverage before and after, recovery, stage alerts.

Plain arrays in, plain values out. Days are days since 1970-01-01. A
forecast made at the end of day ``d`` is placed at **offset**
``k = d + 1 − e`` from an event on day ``e``: the first day it covers is
``k`` days after the event's first day, so ``k = 0`` is the forecast made the
evening before (nothing could know yet) and ``k = 1`` the first one made
after a day of the new regime closed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.interface import STAGES
from stream_app.evaluation.dayloop import StageChanges

DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class RecoveryRules:
    """How coverage around an event is read.

    ``window``: days of forecasts pooled into the trailing rolling coverage
    at an offset (offsets ``k − window + 1 .. k``); ``hold``: consecutive
    offsets whose rolling coverage must be inside the band; ``band``: half
    width of the band around ``nominal`` (fractions: 0.05 is 5 points);
    ``before``/``after``: offsets reported on either side of the event.
    """

    window: int = 3
    hold: int = 3
    band: float = 0.05
    nominal: float = 0.8
    before: int = 28
    after: int = 28

    def __post_init__(self) -> None:
        if min(self.window, self.hold, self.before, self.after) < 1 or not 0 < self.band < self.nominal < 1:
            raise ValueError("window, hold, before and after must be >= 1 and 0 < band < nominal < 1")

    @property
    def offsets(self) -> np.ndarray:
        """The offsets reported, ``−before .. after − 1``."""
        return np.arange(-self.before, self.after)


def inside(actual: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Whether each ``actual`` lies in ``[p10, p90]`` (``quantiles[..., 0]``, ``[..., 2]``, ends included); NaN: no."""
    with np.errstate(invalid="ignore"):
        return (actual >= quantiles[..., 0]) & (actual <= quantiles[..., 2])


def aligned(hit: np.ndarray, valid: np.ndarray, days: np.ndarray, rows: np.ndarray, event_days: np.ndarray,
            offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Covered forecasts and forecasts ``(len(offsets),)`` pooled over SKUs ``rows``, each at its own ``event_days``.

    ``hit``/``valid`` ``(D, n)``: covered / scored forecast made at the end of
    ``days[i]`` for panel row ``j``.

    Examples
    --------
    >>> hit = np.array([[True], [False], [True]]); valid = np.ones((3, 1), bool)
    >>> aligned(hit, valid, np.array([10, 11, 12]), np.array([0]), np.array([12]), np.array([-1, 0, 1, 2]))
    (array([1, 0, 1, 0]), array([1, 1, 1, 0]))
    """
    made = np.asarray(event_days)[:, None] + np.asarray(offsets)[None, :] - 1 - int(days[0])
    ok = (made >= 0) & (made < len(days))
    idx = np.clip(made, 0, len(days) - 1)
    cols = np.asarray(rows)[:, None]
    v = valid[idx, cols] & ok
    return (hit[idx, cols] & v).sum(axis=0), v.sum(axis=0)


def rolling(hits: np.ndarray, n: np.ndarray, window: int) -> np.ndarray:
    """Trailing pooled coverage: Σhits / Σn over the last ``window`` offsets (NaN where no forecast).

    Examples
    --------
    >>> rolling(np.array([1, 0, 2, 2]), np.array([1, 2, 2, 2]), 2).round(2).tolist()
    [1.0, 0.33, 0.5, 1.0]
    """
    def trail(x: np.ndarray) -> np.ndarray:
        c = np.concatenate([[0], np.cumsum(x)])
        return c[1:] - c[np.maximum(np.arange(1, len(c)) - window, 0)]

    h, m = trail(np.asarray(hits, float)), trail(np.asarray(n, float))
    return np.divide(h, m, out=np.full(len(m), np.nan), where=m > 0)


def days_to_recover(offsets: np.ndarray, coverage: np.ndarray, rules: RecoveryRules) -> int | None:
    """The first offset ``k >= 0`` from which ``coverage`` stays within the band for ``rules.hold`` offsets.

    0 when it never left the band; None when it is not back before the
    reported offsets end (or has no forecasts there).

    Examples
    --------
    >>> r = RecoveryRules(hold=2, before=1, after=6)
    >>> days_to_recover(r.offsets, np.array([.8, .4, .6, .79, .81, .7, .8]), r)
    2
    """
    within = np.abs(np.nan_to_num(coverage, nan=-1.0) - rules.nominal) <= rules.band + 1e-12
    for i in np.flatnonzero(np.asarray(offsets) >= 0):
        if i + rules.hold <= len(within) and within[i : i + rules.hold].all():
            return int(offsets[i])
    return None


def pooled(hits: np.ndarray, n: np.ndarray, offsets: np.ndarray, lo: int, hi: int) -> float | None:
    """Coverage pooled over offsets ``lo .. hi`` (inclusive); None without forecasts."""
    sel = (offsets >= lo) & (offsets <= hi)
    total = int(n[sel].sum())
    return float(hits[sel].sum() / total) if total else None


def true_changes(stages: np.ndarray, days: np.ndarray) -> StageChanges:
    """Every day a SKU's true stage differs from the day before (both known, ``stages`` ``(D, n)``, -1 unknown)."""
    prev, cur = stages[:-1], stages[1:]
    i, j = np.nonzero((prev >= 0) & (cur >= 0) & (prev != cur))
    return StageChanges(j.astype(np.int64), np.asarray(days)[i + 1].astype(np.int64), prev[i, j].astype(np.int64),
                        cur[i, j].astype(np.int64))


def match(truth: StageChanges, alerts: StageChanges, early: int, late: int) -> np.ndarray:
    """For each alert, the index of the true change it detects, or -1.

    In order of alert day, an alert takes the earliest true change of the
    same SKU to the same stage, not taken yet, that happened between
    ``early`` days after and ``late`` days before it (alert day − true day in
    ``[−early, late]``). Each true change is detected at most once.
    """
    out = np.full(len(alerts), -1, dtype=np.int64)
    taken = np.zeros(len(truth), dtype=bool)
    by_key: dict[tuple[int, int], list[int]] = {}
    for t in np.argsort(truth.days, kind="stable"):
        by_key.setdefault((int(truth.rows[t]), int(truth.stage[t])), []).append(int(t))
    for a in np.argsort(alerts.days, kind="stable"):
        for t in by_key.get((int(alerts.rows[a]), int(alerts.stage[a])), []):
            lag = int(alerts.days[a] - truth.days[t])
            if not taken[t] and -early <= lag <= late:
                out[a], taken[t] = t, True
                break
    return out


def alert_scores(truth: StageChanges, alerts: StageChanges, matched: np.ndarray, first_day: int, last_day: int,
                 sku_days: int, late: int) -> dict:
    """Precision, recall, median latency (days) and false alerts per 100 SKU-months of alerts against true changes.

    Alerts count on days ``first_day .. last_day``; true changes on days
    ``first_day .. last_day − late`` (their whole tolerance window is
    replayed); ``sku_days``: SKU-days observed in the period.
    """
    counted_a = (alerts.days >= first_day) & (alerts.days <= last_day)
    counted_t = (truth.days >= first_day) & (truth.days <= last_day - late)
    hit_a = counted_a & (matched >= 0)
    found = np.zeros(len(truth), dtype=bool)
    found[matched[matched >= 0]] = True
    detected = counted_t & found
    lags = [int(alerts.days[a] - truth.days[matched[a]]) for a in np.flatnonzero(matched >= 0)
            if counted_t[matched[a]]]
    false = int((counted_a & (matched < 0)).sum())
    months = sku_days / DAYS_PER_MONTH
    by_transition = {}
    for p, s in sorted({(int(p), int(s)) for p, s in zip(truth.previous[counted_t], truth.stage[counted_t])}):
        sel = counted_t & (truth.previous == p) & (truth.stage == s)
        by_transition[f"{STAGES[p]} -> {STAGES[s]}"] = {"true": int(sel.sum()), "detected": int((sel & found).sum())}
    by_stage = {STAGES[s]: {"alerts": int((counted_a & (alerts.stage == s)).sum()),
                            "correct": int((hit_a & (alerts.stage == s)).sum())} for s in range(len(STAGES))}
    return {
        "alerts": int(counted_a.sum()), "true_changes": int(counted_t.sum()),
        "correct_alerts": int(hit_a.sum()), "detected_changes": int(detected.sum()), "false_alerts": false,
        "precision": float(hit_a.sum() / counted_a.sum()) if counted_a.any() else None,
        "recall": float(detected.sum() / counted_t.sum()) if counted_t.any() else None,
        "median_latency_days": float(np.median(lags)) if lags else None,
        "latency_days_p25_p75": [float(np.percentile(lags, 25)), float(np.percentile(lags, 75))] if lags else None,
        "sku_months": round(months, 1),
        "false_alerts_per_100_sku_months": float(100 * false / months) if months > 0 else None,
        "by_transition": by_transition, "alerts_by_new_stage": by_stage,
    }
