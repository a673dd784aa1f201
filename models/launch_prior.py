"""Launch demand from product text: what the most similar products sold in their first days.

A SKU with a catalog record and no sale yet gives the network nothing to
read (it is scale-relative: no sales, no scale). What it does have is its
text. Its cold-start forecast of the units sold over the first 1, 7 and 14
days is the quantiles of what the ``k`` earlier launches nearest to it by
text (cosine of the sentence embeddings) sold over theirs, with every
earlier launch also weighing in a little (``prior``: their total weight),
so five neighbours that all happened to sell nothing do not make a p90 of 0.
Without text the same function gives the quantiles of all earlier launches:
the no-text answer the text must beat.

Pure: arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.interface import HORIZONS, QUANTILES

LAUNCH_K = 10  # neighbours; chosen on UCI launches of March-June 2011 (docs/evaluation/cold-starts-uci)
LAUNCH_PRIOR = 1.0  # total weight of all launches against 1 per neighbour
LAUNCHED_AFTER = 14  # days: a first sale in the data's (or a worker's) first 14 days is a product that sold before
MIN_LAUNCHES = 2 * LAUNCH_K  # fewer earlier launches than this: no cold-start forecast from text
LAUNCH_DAYS = max(HORIZONS)  # a launch is known once its first 14 days have closed


def launch_totals(units: np.ndarray, first_index: np.ndarray) -> np.ndarray:
    """``(n, 3)`` units sold over the first 1, 7 and 14 days from each row's first sale; NaN where unknown.

    ``units`` ``(n, days)`` daily units; ``first_index`` ``(n,)`` column of
    the first sale, -1 for none. A window that runs past the last column is
    not closed yet: NaN.
    """
    n, days = units.shape
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(units, axis=1, dtype=np.float64)], axis=1)
    out = np.full((n, len(HORIZONS)), np.nan)
    rows = np.flatnonzero(first_index >= 0)
    for j, h in enumerate(HORIZONS):
        ok = rows[first_index[rows] + h <= days]
        out[ok, j] = cum[ok, first_index[ok] + h] - cum[ok, first_index[ok]]
    return out


@dataclass(frozen=True)
class LaunchReference:
    """Earlier launches: ``text`` ``(r, 384)`` unit embeddings, ``totals`` ``(r, 3)`` units over their first 1/7/14 days."""

    text: np.ndarray
    totals: np.ndarray

    def __len__(self) -> int:
        return len(self.totals)

    def quantiles(self, query: np.ndarray | None, k: int = LAUNCH_K, prior: float = LAUNCH_PRIOR) -> np.ndarray:
        """``(q, 3, 3)`` p10/p50/p90 units over the first 1, 7, 14 days for ``query`` ``(q, 384)`` texts.

        ``query`` None: one row of the all-launches quantiles (no text).
        """
        if len(self) == 0:
            raise ValueError("no earlier launch to compare with")
        if query is None:
            weights = np.ones((1, len(self)))
        else:
            k = min(k, len(self))
            sims = np.asarray(query, dtype=np.float32) @ self.text.T  # (q, r)
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            weights = np.full(sims.shape, prior / len(self))
            np.put_along_axis(weights, top, 1.0 + prior / len(self), axis=1)
        return np.stack([weighted_quantiles(self.totals[:, j], weights) for j in range(len(HORIZONS))], axis=1)


def weighted_quantiles(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(q, 3)`` :data:`QUANTILES` of ``values`` ``(r,)`` under each row of ``weights`` ``(q, r)``.

    The quantile at level ``a`` is the smallest value whose cumulative weight
    reaches ``a`` of the row's total (a step function, as ``np.quantile``'s
    ``inverted_cdf``), so it is always one of the values.

    >>> weighted_quantiles(np.array([0.0, 10.0, 3.0]), np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]]))
    array([[ 0.,  3., 10.],
           [10., 10., 10.]])
    """
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[:, order], axis=1)
    cum /= cum[:, -1:]
    levels = np.asarray(QUANTILES)[None, :] - 1e-9  # a level exactly reached counts as reached
    idx = np.minimum(np.array([np.searchsorted(row, levels[0]) for row in cum]), len(values) - 1)
    return values[order][idx]


def launch_rows(units: np.ndarray, first_index: np.ndarray, has_text: np.ndarray, day_index: int,
                launched_after: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, totals)`` of the launches known at the end of column ``day_index``.

    A launch: first sale in a column from ``launched_after`` on (a first sale
    in the data's first columns is a product that sold before the data
    began), its first 14 days closed by ``day_index``, and a text (nothing to
    compare it by otherwise). ``totals`` ``(len(rows), 3)`` units over its
    first 1, 7, 14 days.
    """
    first = np.where(first_index <= day_index, first_index, -1)
    totals = launch_totals(units[:, : day_index + 1], first)
    rows = np.flatnonzero((first >= launched_after) & has_text & np.isfinite(totals).all(axis=1))
    return rows, totals[rows]


def window_launches(units: np.ndarray, age: np.ndarray, has_text: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, totals)``: the SKUs of a window batch whose first 14 days after the first sale lie in the window.

    ``units`` ``(n, days)`` daily units, the last column the day the batch
    is as of; ``age`` ``(n,)`` days since the first sale on that day (-1
    never); ``totals`` ``(len(rows), 3)`` units over the first 1, 7, 14
    days. Only SKUs with a text (``has_text``) count.
    """
    days = units.shape[1]
    rows = np.flatnonzero(has_text & (age >= LAUNCH_DAYS - 1) & (age <= days - 1))
    totals = launch_totals(units[rows], (days - 1 - age[rows]).astype(np.int64))
    return rows, totals


def launches_after(first_day: np.ndarray, text: np.ndarray, totals: np.ndarray, earliest: int,
                   after: int = LAUNCHED_AFTER) -> LaunchReference:
    """The :class:`LaunchReference` of the launches first sold at least ``after`` days after ``earliest``.

    ``first_day`` ``(r,)`` days since 1970-01-01 of each first sale (or
    launch); ``earliest``: the first first-sale day known at all (a
    worker's first sales are mostly of products older than the worker, not
    launches; a launch day the catalog names needs no such margin, only
    data from it on: ``after=0``).
    """
    keep = first_day >= earliest + after
    return LaunchReference(text=np.asarray(text[keep], dtype=np.float32),
                           totals=np.asarray(totals[keep], dtype=np.float64))
