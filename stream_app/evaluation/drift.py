"""Drift scenarios of a simulator run, scored on a day-by-day replay with and without calibration.

The events come from the run's ``simulation.json``: the category whose
demand shifts on a known day, each promoted SKU's promotion (and its end),
each early-declining SKU's first day of decline. Around each, forecasts are
lined up by offset (:mod:`stream_app.evaluation.drift_metrics`) and their
p10–p90 coverage read before and after, for the published quantiles of
both replays. Stage alerts (the same in both) are matched to the true
stage changes of ``labels.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.interface import HORIZONS
from stream_app.evaluation.dayloop import DayForecasts, StageChanges
from stream_app.evaluation.drift_metrics import (RecoveryRules, aligned, alert_scores, days_to_recover, inside,
                                                 match, pooled, rolling, true_changes)
from stream_app.evaluation.scores import wape

SCENARIO_KEYS = ("level_shift", "promotion", "promotion_end", "early_decline")
ALERT_EARLY, ALERT_LATE = 3, 14  # an alert detects a true change from 3 days before it to 14 days after
# Also reported, not the headline: the model reads clicks and carts, which lead orders, so some alerts
# come more than 3 days before the change; how the scores move when earlier alerts count.
SENSITIVITY_EARLY = (7, 14)


@dataclass(frozen=True)
class Event:
    """SKUs (panel rows) and the first day of the new regime for each (days since 1970-01-01)."""

    rows: np.ndarray
    days: np.ndarray
    note: str


def scenario_events(params: dict, skus: list[str], categories: np.ndarray) -> dict[str, Event]:
    """The events of a simulator run's ``simulation.json`` (``params``) among the panel's SKUs, by scenario key."""
    start = int(np.datetime64(params["start_date"], "D").astype(np.int64))
    row = {s: i for i, s in enumerate(skus)}

    def per_sku(days_by_sku: dict[str, int], shift: int, note: str) -> Event:
        pairs = [(row[s], start + int(d) + shift) for s, d in days_by_sku.items() if s in row]
        rows, days = (np.array(x, dtype=np.int64) for x in zip(*pairs)) if pairs else (np.zeros(0, np.int64),) * 2
        return Event(rows, days, note)

    out = {}
    shift = params.get("level_shift")
    if shift:
        rows = np.flatnonzero(categories == shift["category"])
        out["level_shift"] = Event(rows, np.full(len(rows), start + int(shift["day"])),
                                   f"{shift['category']} ×{shift['factor']:g}")
    promos = params.get("promotions") or {}
    if promos:
        length = int(params.get("promotion_days", 7))
        out["promotion"] = per_sku(promos, 0, f"{length}-day promotions")
        out["promotion_end"] = per_sku(promos, length, "after a promotion")
    declines = params.get("early_declines")
    if declines:
        out["early_decline"] = per_sku(declines, 0, "growth cut short")
    return out


def scored(fc: DayForecasts, actual: np.ndarray, first_day: int, last_day: int) -> np.ndarray:
    """``(D, n, H)`` forecasts that count: made on ``first_day .. last_day − h`` with a known outcome."""
    made = fc.days[:, None, None]
    h = np.asarray(HORIZONS)[None, None, :]
    return fc.forecast[:, :, None] & (made >= first_day) & (made + h <= last_day) & np.isfinite(actual)


def event_coverage(event: Event, hit: np.ndarray, valid: np.ndarray, days: np.ndarray, rules: RecoveryRules,
                   horizon: int) -> dict:
    """Coverage of ``horizon``-day forecasts around ``event``: before, first week, after, recovery, the rolling series.

    *Before* pools the offsets whose whole horizon ends before the event
    (``−rules.before .. −horizon``); offsets ``−horizon + 1 .. −1`` straddle it.
    """
    offsets = rules.offsets
    hits, n = aligned(hit, valid, days, event.rows, event.days, offsets)
    roll = rolling(hits, n, rules.window)
    return {
        "before": pooled(hits, n, offsets, -rules.before, -horizon),
        "first_week": pooled(hits, n, offsets, 0, 6),
        "after": pooled(hits, n, offsets, 0, rules.after - 1),
        "days_to_recover": days_to_recover(offsets, roll, rules),
        "forecasts_after": int(n[offsets >= 0].sum()),
        "rolling": [None if np.isnan(x) else round(float(x), 4) for x in roll],
    }


def evaluate_scenarios(events: dict[str, Event], fc: DayForecasts, published: dict[str, np.ndarray],
                       actual: np.ndarray, first_day: int, last_day: int, rules: RecoveryRules) -> dict:
    """Per scenario, horizon and replay (``published``: name -> quantiles), :func:`event_coverage`."""
    valid = scored(fc, actual, first_day, last_day)
    out = {}
    for key, ev in events.items():
        keep = (ev.days >= first_day) & (ev.days <= last_day)
        ev = Event(ev.rows[keep], ev.days[keep], ev.note)
        entry = {"note": ev.note, "skus": int(len(np.unique(ev.rows))), "events": int(len(ev.rows)),
                 "first_day": int(ev.days.min()) if len(ev.rows) else None, "horizons": {}}
        for j, h in enumerate(HORIZONS):
            entry["horizons"][str(h)] = {
                name: event_coverage(ev, inside(actual[:, :, j], q[:, :, j]), valid[:, :, j], fc.days, rules, h)
                for name, q in published.items()}
        out[key] = entry
    return out


def overall(fc: DayForecasts, published: dict[str, np.ndarray], actual: np.ndarray, first_day: int,
            last_day: int, rows: np.ndarray | None = None) -> dict:
    """Per horizon and replay: p10–p90 coverage and WAPE of p50 over every scored forecast (of ``rows`` if given)."""
    valid = scored(fc, actual, first_day, last_day)
    if rows is not None:
        keep = np.zeros(valid.shape[1], dtype=bool)
        keep[rows] = True
        valid &= keep[None, :, None]
    out = {}
    for j, h in enumerate(HORIZONS):
        v = valid[:, :, j]
        y = actual[:, :, j][v]
        out[str(h)] = {name: {"coverage": float(inside(y, q[:, :, j][v]).mean()) if len(y) else None,
                              "wape": wape(y, q[:, :, j][v][:, 1]), "forecasts": int(v.sum())}
                       for name, q in published.items()}
    return out


def evaluate_alerts(alerts: StageChanges, stages: np.ndarray, fc: DayForecasts, first_day: int,
                    last_day: int) -> tuple[dict, StageChanges, np.ndarray]:
    """Stage alerts against the true changes of ``stages`` ``(D, n)`` (-1 unknown); also the truth and the matching.

    SKU-days observed: days of the period on which the SKU was launched
    (has a true stage) and the worker had forecast it at least once.
    """
    truth = true_changes(stages, fc.days)
    seen = np.logical_or.accumulate(fc.forecast, axis=0) & (stages >= 0)
    in_period = (fc.days >= first_day) & (fc.days <= last_day)
    sku_days = int(seen[in_period].sum())
    matched = match(truth, alerts, ALERT_EARLY, ALERT_LATE)
    scores = alert_scores(truth, alerts, matched, first_day, last_day, sku_days, ALERT_LATE)
    keys = ("precision", "recall", "median_latency_days", "false_alerts_per_100_sku_months")
    scores["earlier_alerts_count"] = {
        str(early): {k: v for k, v in alert_scores(truth, alerts, match(truth, alerts, early, ALERT_LATE), first_day,
                                                   last_day, sku_days, ALERT_LATE).items() if k in keys}
        for early in SENSITIVITY_EARLY}
    return scores, truth, matched
