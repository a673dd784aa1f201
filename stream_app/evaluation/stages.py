"""Do the published stages agree with the sales? The stage consistency table and stage-alert precision.

A stage a shop acts on must describe the sales: ``decline`` falling sales,
``growth`` rising ones, ``introduction`` young products. For the stages
consumers hold at each origin (and the model's argmax, and the hindsight
rule), per stage: its share of the SKUs, the median ratio of the units sold
in the last 28 days to the 28 before, the share of its SKUs whose sales
grew by more than 25 %, and the median days since the first sale. A
stage-change alert is precise when the hindsight rule
(:func:`models.labelling.stage_labels` on the whole data, past and future of
the day) gives the same stage on its day.
"""

from __future__ import annotations

import numpy as np

from models.interface import STAGES

WINDOW = 28  # days in each compared window
GROWING = 1.25  # "grew by more than 25 %"


def held_stages(by_day: dict[int, list[dict]], skus: list[str], origins: np.ndarray) -> np.ndarray:
    """``(O, R)`` index of the stage each SKU's newest published forecast names at each origin; -1 none held."""
    index = {s: i for i, s in enumerate(skus)}
    out = np.full((len(origins), len(skus)), -1, dtype=np.int64)
    latest: dict[int, int] = {}
    days = sorted(by_day)
    j = 0
    for i, origin in enumerate(np.asarray(origins).tolist()):
        while j < len(days) and days[j] <= origin:
            for m in by_day[days[j]]:
                row = index.get(m["sku"])
                if row is not None:
                    latest[row] = STAGES.index(m["stage"])
            j += 1
        for row, stage in latest.items():
            out[i, row] = stage
    return out


def stage_changes(by_day: dict[int, list[dict]], skus: list[str], first: int, last: int) -> list[tuple[int, int, int]]:
    """``(row, day, new stage)`` of every day from ``first`` to ``last`` whose forecast names another stage than the
    SKU's forecast before it: the days the worker sent a ``stage_change`` alert."""
    index = {s: i for i, s in enumerate(skus)}
    shown: dict[int, int] = {}
    out = []
    for day in sorted(by_day):
        for m in by_day[day]:
            row = index.get(m["sku"])
            if row is None:
                continue
            stage = STAGES.index(m["stage"])
            if row in shown and shown[row] != stage and first <= day <= last:
                out.append((row, day, stage))
            shown[row] = stage
    return out


def consistency(stages: np.ndarray, units: np.ndarray, first_day: int, first_sale: np.ndarray,
                origins: np.ndarray) -> dict[str, dict]:
    """Per stage name: SKU-origin pairs, share, median 28-day sales ratio, share growing > 25 %, median age (days).

    ``stages``: ``(O, R)`` stage index per origin and SKU (-1: none, left
    out); ``units``: ``(R, D)`` units sold per day from ``first_day``;
    ``first_sale``: ``(R,)`` day of each SKU's first sale (-1: none).
    """
    ratios, ages = [], []
    for origin in np.asarray(origins).tolist():
        end = origin - first_day + 1
        last = units[:, max(0, end - WINDOW): end].sum(axis=1)
        before = units[:, max(0, end - 2 * WINDOW): max(0, end - WINDOW)].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios.append(np.where(before > 0, last / np.where(before > 0, before, 1), np.where(last > 0, np.inf, 1.0)))
        ages.append(np.where((first_sale >= 0) & (first_sale <= origin), origin - first_sale, np.nan))
    ratio, age = np.stack(ratios), np.stack(ages)
    known = stages >= 0
    total = int(known.sum())
    out = {}
    for k, name in enumerate(STAGES):
        sel = stages == k
        n = int(sel.sum())
        a = age[sel]
        out[name] = {
            "pairs": n,
            "share": n / total if total else None,
            "median_ratio_28d": float(np.median(ratio[sel])) if n else None,
            "share_growing_25pct": float((ratio[sel] > GROWING).mean()) if n else None,
            "median_age_days": float(np.nanmedian(a)) if n and np.isfinite(a).any() else None,
        }
    return out


def alert_precision(changes: list[tuple[int, int, int]], labels: np.ndarray, first_day: int) -> dict:
    """Share of stage changes whose new stage is the hindsight label of their day, overall and per new stage.

    ``labels``: ``(R, D)`` hindsight stage per SKU and day from ``first_day``
    (-1 unlabelled: such alerts are left out).
    """
    per: dict[str, list[int]] = {s: [0, 0] for s in STAGES}
    for row, day, stage in changes:
        truth = labels[row, day - first_day]
        if truth < 0:
            continue
        per[STAGES[stage]][0] += int(truth == stage)
        per[STAGES[stage]][1] += 1
    hits, n = sum(v[0] for v in per.values()), sum(v[1] for v in per.values())
    return {"alerts": len(changes), "labelled": n, "precision": hits / n if n else None,
            "per_stage": {s: {"alerts": v[1], "precision": v[0] / v[1] if v[1] else None} for s, v in per.items()}}


def alert_outcomes(alerts_by_day: dict[int, list[dict]], skus: list[str], labels: np.ndarray, first_day: int,
                   first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    """``(confidence, right)`` of every ``stage_change`` alert from day ``first`` to ``last`` with a known truth.

    ``labels``: ``(R, D)`` true stage per SKU of ``skus`` and day from
    ``first_day`` (-1 unknown: left out); right = the alert's new stage is
    the truth on its day.
    """
    index = {s: i for i, s in enumerate(skus)}
    conf, right = [], []
    for day in sorted(d for d in alerts_by_day if first <= d <= last):
        col = day - first_day
        if not 0 <= col < labels.shape[1]:
            continue
        for a in alerts_by_day[day]:
            row = index.get(a["sku"])
            if a["kind"] != "stage_change" or row is None or labels[row, col] < 0:
                continue
            conf.append(a["confidence"])
            right.append(labels[row, col] == STAGES.index(a["stage"]))
    return np.asarray(conf, dtype=np.float64), np.asarray(right, dtype=bool)
