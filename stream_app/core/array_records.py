"""Kafka record values that hold named numpy arrays: an LZ4 frame around an ``.npz``, read without pickle.

Pending forecasts (:mod:`stream_app.core.outcomes`) and training samples
(:mod:`stream_app.core.samples`) travel this way. ``np.load`` runs with
``allow_pickle=False``, so an object array (or anything else that would
need the unpickler) is refused, never loaded: whoever can write to a topic
cannot run code in the worker or the retrain job.
"""

from __future__ import annotations

import io
import zipfile

import lz4.frame
import numpy as np

from models.calibration_codec import RecordError, looks_like_pickle

LZ4_MAGIC = b"\x04\x22\x4d\x18"
MAX_RECORD_BYTES = 64 << 20  # a record that claims more when decompressed is not ours (ours: a few MB at most)


def pack_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """``arrays`` as one LZ4-compressed ``.npz`` (no object arrays: they would need a pickle to load)."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return lz4.frame.compress(buf.getvalue())


def unpack_arrays(value: bytes, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The arrays ``names`` (None: all it holds) of a :func:`pack_arrays` value.

    Raises :class:`~models.calibration_codec.RecordError` (``pickle``,
    ``magic``, ``truncated`` or ``malformed``) for anything else; the
    caller checks the arrays' kinds and shapes.
    """
    if value[:4] != LZ4_MAGIC:
        if looks_like_pickle(value):
            raise RecordError("pickle", "a pickle, never loaded (it could run code)")
        raise RecordError("magic", f"starts with {value[:4]!r}, not an LZ4 frame")
    try:
        size = lz4.frame.get_frame_info(value)["content_size"]
        if size > MAX_RECORD_BYTES:
            raise RecordError("malformed", f"claims {size} bytes decompressed")
        raw = lz4.frame.decompress(value)
    except RuntimeError as exc:  # python-lz4's error for a damaged or incomplete frame
        raise RecordError("truncated", f"LZ4 frame: {exc}") from None
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            return {name: z[name] for name in (z.files if names is None else names)}
    except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        # np.load's errors for object arrays, a damaged zip or .npy header, a missing array.
        raise RecordError("malformed", f"npz: {exc}") from None
