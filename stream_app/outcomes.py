"""Forecasts waiting for their outcome: kept per partition and day until every horizon has closed.

A forecast made at the end of day ``D`` for horizon ``h`` meets its outcome
when day ``D + h`` closes: the units the SKU sold over days ``D+1 .. D+h``.
A SKU that sells nothing afterwards still has an outcome (zero), so pending
forecasts are kept by the day they were made, not in the SKU's window.

Each (partition, day) is encoded into chunks small enough for one changelog
message, so pending forecasts survive a crash with the rest of the state.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import lz4.frame
import numpy as np

from models.interface import HORIZONS

CHUNK_SKUS = 8192  # SKUs per encoded chunk: ~250 KB before compression, under Kafka's 1 MB default


@dataclass(frozen=True)
class Made:
    """Forecasts made on one day: ``keys`` (SKUs), raw ``quantiles`` ``(n, H, 3)`` units, ``groups`` ``(n,)`` categories."""

    keys: list[bytes]
    quantiles: np.ndarray
    groups: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)


def encode(made: Made) -> list[bytes]:
    """``made`` as LZ4-compressed chunks of at most :data:`CHUNK_SKUS` SKUs."""
    out = []
    for start in range(0, len(made), CHUNK_SKUS):
        sl = slice(start, start + CHUNK_SKUS)
        buf = io.BytesIO()
        np.savez(buf, keys=np.array(made.keys[sl], dtype=object).astype("S"),
                 quantiles=made.quantiles[sl].astype(np.float32),
                 groups=np.asarray(made.groups[sl]).astype("U"))
        out.append(lz4.frame.compress(buf.getvalue()))
    return out


def decode(chunks: list[bytes]) -> Made:
    """The :class:`Made` that :func:`encode` turned into ``chunks``."""
    keys: list[bytes] = []
    quantiles, groups = [], []
    for chunk in chunks:
        with np.load(io.BytesIO(lz4.frame.decompress(chunk))) as z:
            keys.extend(z["keys"].tolist())
            quantiles.append(z["quantiles"])
            groups.append(z["groups"].astype(object))
    if not quantiles:
        return Made([], np.zeros((0, len(HORIZONS), 3), np.float32), np.zeros(0, object))
    return Made(keys, np.concatenate(quantiles), np.concatenate(groups))


class Pending:
    """One partition's forecasts by the day they were made, until their longest horizon closes."""

    def __init__(self, horizons: tuple[int, ...] = HORIZONS) -> None:
        self.horizons = horizons
        self.by_day: dict[int, Made] = {}

    def add(self, day: int, made: Made) -> None:
        """Record forecasts made at the end of ``day`` (several ticks of a day accumulate)."""
        old = self.by_day.get(day)
        if old is not None:
            made = Made(old.keys + made.keys, np.concatenate([old.quantiles, made.quantiles]),
                        np.concatenate([old.groups, made.groups]))
        self.by_day[day] = made

    def due(self, closed_day: int) -> list[tuple[int, int, Made]]:
        """``(horizon index, made day, forecasts)`` whose outcome is complete once ``closed_day`` closed."""
        return [(i, closed_day - h, self.by_day[closed_day - h])
                for i, h in enumerate(self.horizons) if closed_day - h in self.by_day]

    def expire(self, closed_day: int) -> list[int]:
        """Forget days whose every horizon has closed; returns those days."""
        gone = [d for d in self.by_day if d + max(self.horizons) <= closed_day]
        for d in gone:
            del self.by_day[d]
        return gone


def realised(history: np.ndarray, as_of_day: int, made_day: int, horizon: int) -> np.ndarray:
    """Units sold over days ``made_day+1 .. made_day+horizon`` from ``history`` ``(n, days)`` ending at ``as_of_day``."""
    end = history.shape[1] - (as_of_day - (made_day + horizon))
    start = end - horizon
    if start < 0 or end > history.shape[1]:
        raise ValueError("the window does not hold the outcome days; keep more history than the longest horizon")
    return history[:, start:end].sum(axis=1)
