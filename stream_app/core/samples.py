"""Training examples the worker publishes: a forecast's input when it is made, its outcome when a horizon closes.

A forecast made at the end of day ``D`` is an unlabelled example: the
model's input then (the SKU's daily history and its age) is published to
the ``training-samples`` topic as an *inputs* record; when day ``D + h``
closes and the worker pairs the forecast with the units sold (the
calibrator learns from the same pair), an *outcomes* record with those
units follows. ``trendcast retrain`` joins the two by SKU and day
(:mod:`stream_app.data.stream_samples`): the training set is durable,
replayable and shared by every worker, and no worker keeps inputs in
memory for two weeks.

Records hold arrays for up to :data:`CHUNK_SKUS` SKUs at once, compressed
(:mod:`stream_app.core.array_records`, never a pickle), versioned by
:data:`FORMAT` and the feature spec. The text embedding is not repeated in
every record: the retrain job reads it from the worker's embeddings table.
Keys (ASCII): ``in:<day>:<first SKU>`` and ``out:<made day>:<horizon>:<first SKU>``;
a chunk's first SKU is unique within a partition's day, and SKUs are
partitioned, so a key names one record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.calibration_codec import RecordError
from models.interface import FeatureBatch
from models.layout import CHANNELS, FEATURE_SPEC_VERSION
from stream_app.core.array_records import pack_arrays, unpack_arrays

FORMAT = 1
INPUTS, OUTCOMES = 0, 1
CHUNK_SKUS = 1024  # 1,024 SKUs x 6 channels x 56 days of float32: 1.4 MB raw, ~0.1-0.3 MB compressed


@dataclass(frozen=True)
class SampleRecord:
    """One decoded record: ``kind`` :data:`INPUTS` (``history``, ``age`` set) or :data:`OUTCOMES` (``units``).

    ``day``: the day the forecast was made (its input's last day), days
    since 1970-01-01 UTC; ``horizon``: days (outcomes; 0 for inputs);
    ``keys``: SKUs; ``history``: ``(n, 6, days)`` float32 as in
    :class:`~models.interface.FeatureBatch`; ``age``: days since first sale
    (-1: none); ``units``: units sold over days ``day+1 .. day+horizon``.
    """

    kind: int
    spec: int
    day: int
    horizon: int
    keys: list[bytes]
    history: np.ndarray | None = None
    age: np.ndarray | None = None
    units: np.ndarray | None = None


def _meta(kind: int, day: int, horizon: int) -> np.ndarray:
    return np.array([FORMAT, FEATURE_SPEC_VERSION, kind, day, horizon], dtype=np.int64)


def _chunks(n: int):
    return (slice(s, s + CHUNK_SKUS) for s in range(0, n, CHUNK_SKUS))


def encode_inputs(keys: list[bytes], features: FeatureBatch, rows: np.ndarray) -> list[tuple[bytes, bytes]]:
    """``(key, value)`` records of the inputs of ``features``' rows ``rows`` (SKUs ``keys[rows]``)."""
    rows = np.asarray(rows)
    out = []
    for sl in _chunks(len(rows)):
        r = rows[sl]
        ks = [keys[i] for i in r]
        value = pack_arrays({"meta": _meta(INPUTS, features.as_of_day, 0), "keys": np.array(ks, dtype="S"),
                             "history": np.ascontiguousarray(features.history[r], dtype=np.float32),
                             "age": np.asarray(features.days_since_first_sale[r], dtype=np.float32)})
        out.append((b"in:%d:%s" % (features.as_of_day, ks[0]), value))
    return out


def encode_outcomes(keys: list[bytes], made_day: int, horizon: int, units: np.ndarray) -> list[tuple[bytes, bytes]]:
    """``(key, value)`` records of the units sold over ``horizon`` days after ``made_day`` by SKUs ``keys``."""
    units = np.asarray(units, dtype=np.float32)
    out = []
    for sl in _chunks(len(keys)):
        ks = keys[sl]
        value = pack_arrays({"meta": _meta(OUTCOMES, made_day, horizon), "keys": np.array(ks, dtype="S"),
                             "units": units[sl]})
        out.append((b"out:%d:%d:%s" % (made_day, horizon, ks[0]), value))
    return out


def decode(value: bytes) -> SampleRecord:
    """The record :func:`encode_inputs` or :func:`encode_outcomes` wrote; :class:`RecordError` for anything else.

    A record of another feature spec decodes (its ``spec`` says which):
    whoever trains decides whether it can use it.
    """
    arrays = unpack_arrays(value)
    meta, keys = arrays.get("meta"), arrays.get("keys")
    if meta is None or meta.dtype != np.int64 or meta.shape != (5,) or int(meta[0]) != FORMAT:
        raise RecordError("version", f"not a training-samples record of format {FORMAT}")
    spec, kind, day, horizon = (int(v) for v in meta[1:])
    n = 0 if keys is None else len(keys)
    if keys is None or keys.dtype.kind != "S" or keys.shape != (n,) or kind not in (INPUTS, OUTCOMES):
        raise RecordError("malformed", f"no keys of bytes, or kind {kind}")
    if kind == OUTCOMES:
        units = arrays.get("units")
        if units is None or units.dtype != np.float32 or units.shape != (n,):
            raise RecordError("malformed", f"units missing or not float32 ({n},)")
        return SampleRecord(kind, spec, day, horizon, keys.tolist(), units=units)
    history, age = arrays.get("history"), arrays.get("age")
    if (history is None or age is None or history.dtype != np.float32 or history.ndim != 3
            or history.shape[:2] != (n, len(CHANNELS)) or age.dtype != np.float32 or age.shape != (n,)):
        raise RecordError("malformed", f"history or age missing or not float32 ({n}, {len(CHANNELS)}, days), ({n},)")
    return SampleRecord(kind, spec, day, horizon, keys.tolist(), history=history, age=age)
