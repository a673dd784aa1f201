"""A checkpoint as one Kafka record value: a JSON header and the raw weight bytes, never a pickle.

``trendcast retrain`` publishes promoted checkpoints to the compacted
``models`` topic and workers load them from there, so whoever can write to
that topic must not be able to run code in a worker: unlike a ``torch.save``
file, this format holds nothing but numbers and JSON. Layout:

* ``b"TCKP"``, then the header's length as a little-endian ``uint32``;
* the header, UTF-8 JSON: ``{"format", "config", "meta", "tensors": [[name, dtype, shape], ...]}``;
* each tensor's bytes in the header's order, little-endian, C order.

Decoding runs the checks of a checkpoint file
(:func:`models.checkpoint.build_checked`: feature spec, horizons and stages,
weights that fit the network), so a record of another feature spec is
refused like a file of one.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from models.checkpoint import CheckpointError, build_checked, stamped

MAGIC = b"TCKP"
FORMAT = 1
DTYPES = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "float16": np.float16}
MAX_HEADER = 1 << 20


def encode(model: torch.nn.Module, config: dict, meta: dict) -> tuple[str, bytes]:
    """``(checkpoint id, record value)`` of ``model`` with its constructor ``config`` and ``meta`` (stamped)."""
    state, meta = stamped(model, meta)
    arrays = [(name, t.numpy()) for name, t in state.items()]
    for name, a in arrays:
        if a.dtype.name not in DTYPES:
            raise CheckpointError(f"tensor {name} is {a.dtype.name}: a models record holds {sorted(DTYPES)}")
    header = json.dumps({"format": FORMAT, "config": dict(config), "meta": meta,
                         "tensors": [[name, a.dtype.name, list(a.shape)] for name, a in arrays]}).encode()
    parts = [MAGIC, len(header).to_bytes(4, "little"), header]
    parts += [np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes() for _, a in arrays]
    return meta["id"], b"".join(parts)


def read_header(value: bytes) -> tuple[dict, dict]:
    """``(network config, meta)`` of a record (no weights read); :class:`CheckpointError` if it is not one."""
    header = _header(value)[0]
    return header["config"], header["meta"]


def decode(value: bytes) -> tuple[torch.nn.Module, dict]:
    """``(model on CPU in eval mode, meta)`` of a record :func:`encode` wrote; :class:`CheckpointError` otherwise."""
    header, offset = _header(value)
    state = {}
    try:
        for name, dtype, shape in header["tensors"]:
            dt = np.dtype(DTYPES[dtype]).newbyteorder("<")
            n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
            if offset + n > len(value):
                raise ValueError(f"tensor {name} runs past the end of the record")
            state[name] = torch.from_numpy(np.frombuffer(value, dt, count=n // dt.itemsize, offset=offset)
                                           .astype(dt.newbyteorder("=")).reshape(shape))
            offset += n
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"models record is damaged ({exc})") from None
    if offset != len(value):
        raise CheckpointError(f"models record has {len(value) - offset} bytes after its last tensor")
    meta = header["meta"]
    return build_checked(header["config"], state, meta, f"record {meta.get('id', '?')}")


def _header(value: bytes) -> tuple[dict, int]:
    if value[:4] != MAGIC:
        raise CheckpointError(f"not a trendcast models record (starts with {value[:4]!r})")
    size = int.from_bytes(value[4:8], "little")
    if size > MAX_HEADER or 8 + size > len(value):
        raise CheckpointError("models record is truncated or its header is damaged")
    try:
        header = json.loads(value[8 : 8 + size])
    except ValueError as exc:
        raise CheckpointError(f"models record header is not JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT or not isinstance(header.get("meta"), dict):
        raise CheckpointError(f"models record of another format (this trendcast reads format {FORMAT})")
    return header, 8 + size
