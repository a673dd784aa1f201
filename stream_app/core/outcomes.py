"""Forecasts waiting for their outcome: kept per partition and day until every horizon has closed.

A forecast made at the end of day ``D`` for horizon ``h`` meets its outcome
when day ``D + h`` closes: the units the SKU sold over days ``D+1 .. D+h``.
A SKU that sells nothing afterwards still has an outcome (zero), so pending
forecasts are kept by the day they were made, not in the SKU's window.

Each (partition, day) is encoded into chunks small enough for one changelog
message, so pending forecasts survive a crash with the rest of the state.
A chunk is an LZ4 frame around an ``.npz`` of plain arrays (byte strings,
float32, unicode), read back with ``allow_pickle=False``: nothing in it can
run code, and :func:`decode` refuses anything else with a
:class:`~models.calibration_codec.RecordError`.
"""

from __future__ import annotations

import numpy as np

from models.calibration_codec import RecordError
from models.interface import HORIZONS
from stream_app.core.array_records import pack_arrays, unpack_arrays

CHUNK_SKUS = 4096  # SKUs per encoded chunk: ~350 KB before compression, under Kafka's 1 MB default


LOG_STEP = 1.0 / 2048  # log1p units per step of a held quantile: within 0.025 % of (1 + units), 0 exact
_PACK_MAX = np.iinfo(np.uint16).max  # log1p 32, 7.9e13 units


def pack(units: np.ndarray) -> np.ndarray:
    """Quantiles in units as uint16 steps of :data:`LOG_STEP` on the log1p scale (already packed: as they are).

    Memory: a partition holds 14 days of forecasts per SKU; two bytes a
    number instead of four, and the calibrator reads them on the log1p
    scale anyway (a step there is far below any error it learns from).
    """
    a = np.asarray(units)
    if a.dtype == np.uint16:
        return a
    steps = np.rint(np.log1p(np.maximum(a.astype(np.float64), 0.0)) / LOG_STEP)
    return np.minimum(steps, _PACK_MAX).astype(np.uint16)


def unpack(packed: np.ndarray) -> np.ndarray:
    """Units (float64) of :func:`pack`'s steps."""
    return np.expm1(packed.astype(np.float64) * LOG_STEP)


class Made:
    """Forecasts made on one day.

    ``keys``: SKUs; ``quantiles``: the model's raw ``(n, H, 3)`` units (what
    the calibrator learns from); ``published``: the same after calibration
    (what users got, scored for the error and coverage metrics); both are
    held packed (:func:`pack`) and read back in units;
    ``groups``: ``(n,)`` categories; ``horizons``: the indices into
    :data:`~models.interface.HORIZONS` of the ``H`` columns (None: all;
    a horizon whose outcome was learned is dropped, :meth:`Pending.retire`).
    """

    __slots__ = ("keys", "raw_steps", "published_steps", "groups", "horizons")

    def __init__(self, keys: list[bytes], quantiles: np.ndarray, published: np.ndarray, groups: np.ndarray,
                 horizons: tuple[int, ...] | None = None) -> None:
        self.keys = keys
        self.raw_steps, self.published_steps = pack(quantiles), pack(published)
        self.groups = groups
        self.horizons = horizons

    @property
    def quantiles(self) -> np.ndarray:
        """The raw quantiles ``(n, H, 3)``, units."""
        return unpack(self.raw_steps)

    @property
    def published(self) -> np.ndarray:
        """The published quantiles ``(n, H, 3)``, units."""
        return unpack(self.published_steps)

    def __len__(self) -> int:
        return len(self.keys)

    def at(self, h_idx: int) -> tuple[np.ndarray, np.ndarray]:
        """``(raw, published)`` ``(n, 3)`` quantiles of horizon ``HORIZONS[h_idx]``, units."""
        col = h_idx if self.horizons is None else self.horizons.index(h_idx)
        return unpack(self.raw_steps[:, col]), unpack(self.published_steps[:, col])


def encode(made: Made) -> list[bytes]:
    """``made`` (every horizon) as LZ4-compressed chunks of at most :data:`CHUNK_SKUS` SKUs."""
    if made.horizons is not None:
        raise ValueError("a day's forecasts are encoded before any of their horizons is retired")
    out = []
    for start in range(0, len(made), CHUNK_SKUS):
        sl = slice(start, start + CHUNK_SKUS)
        out.append(pack_arrays({"keys": np.array(made.keys[sl], dtype=object).astype("S"),
                                "quantiles": unpack(made.raw_steps[sl]).astype(np.float32),
                                "published": unpack(made.published_steps[sl]).astype(np.float32),
                                "groups": np.asarray(made.groups[sl]).astype("U")}))
    return out


def decode(chunks: list[bytes]) -> Made:
    """The :class:`Made` that :func:`encode` turned into ``chunks``.

    Raises :class:`~models.calibration_codec.RecordError` for a chunk that
    is not one :func:`encode` could have written.
    """
    keys: list[bytes] = []
    quantiles, published, groups = [], [], []
    for chunk in chunks:
        z = _arrays(bytes(chunk))
        keys.extend(z["keys"].tolist())
        quantiles.append(z["quantiles"])
        published.append(z["published"])
        groups.append(z["groups"].astype(object))
    if not quantiles:
        empty = np.zeros((0, len(HORIZONS), 3), np.float32)
        return Made([], empty, empty.copy(), np.zeros(0, object))
    return Made(keys, np.concatenate(quantiles), np.concatenate(published), shared(np.concatenate(groups)))


def shared(names: np.ndarray) -> np.ndarray:
    """``names`` as an object array whose equal strings are one object (a few groups, thousands of SKUs)."""
    if not len(names):
        return names.astype(object)
    unique, index = np.unique(names, return_inverse=True)
    return unique.astype(object)[index]


def _arrays(chunk: bytes) -> dict[str, np.ndarray]:
    """The four arrays of one chunk, checked for kind and shape."""
    arrays = unpack_arrays(chunk, ("keys", "quantiles", "published", "groups"))
    keys, q, pub, groups = arrays.values()
    n = len(keys)
    if (keys.dtype.kind != "S" or groups.dtype.kind != "U" or q.dtype != np.float32 or pub.dtype != np.float32
            or keys.shape != (n,) or groups.shape != (n,) or q.shape != (n, len(HORIZONS), 3) or pub.shape != q.shape):
        found = [(a.dtype.str, a.shape) for a in arrays.values()]
        raise RecordError("malformed", f"arrays of unexpected kind or shape: {found}")
    return arrays


class Pending:
    """One partition's forecasts by the day they were made, until their longest horizon closes."""

    def __init__(self, horizons: tuple[int, ...] = HORIZONS) -> None:
        self.horizons = horizons
        self.by_day: dict[int, Made] = {}

    def add(self, day: int, made: Made) -> None:
        """Record forecasts made at the end of ``day`` (several ticks of a day accumulate)."""
        old = self.by_day.get(day)
        if old is not None:
            made = Made(old.keys + made.keys, np.concatenate([old.raw_steps, made.raw_steps]),
                        np.concatenate([old.published_steps, made.published_steps]),
                        np.concatenate([old.groups, made.groups]))
        self.by_day[day] = made

    def due(self, closed_day: int) -> list[tuple[int, int, Made]]:
        """``(horizon index, made day, forecasts)`` whose outcome is complete once ``closed_day`` closed."""
        return [(i, closed_day - h, self.by_day[closed_day - h])
                for i, h in enumerate(self.horizons) if closed_day - h in self.by_day]

    def retire(self, made_day: int, h_idx: int) -> None:
        """Drop horizon ``HORIZONS[h_idx]`` of the forecasts made on ``made_day``: its outcome was learned.

        Memory: a day's forecasts wait up to 14 days, the 1-day horizon's
        numbers for one of them, the 7-day ones for seven.
        """
        made = self.by_day.get(made_day)
        if made is None:
            return
        present = tuple(range(made.raw_steps.shape[1])) if made.horizons is None else made.horizons
        keep = [i for i, h in enumerate(present) if h != h_idx]
        if len(keep) == len(present):
            return
        self.by_day[made_day] = Made(made.keys, np.ascontiguousarray(made.raw_steps[:, keep]),
                                     np.ascontiguousarray(made.published_steps[:, keep]), made.groups,
                                     tuple(present[i] for i in keep))

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
