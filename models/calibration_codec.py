"""A calibrator as a versioned record of numbers: what the learning table's ``cal:`` keys hold.

Why not pickle: a pickle is a program, and anyone who can write to the
changelog topic could run it in the worker. Decoding here only reads
numbers, and anything that is not exactly a record of this layout is
refused with a :class:`RecordError` whose ``reason`` is one of
:data:`REASONS` (the caller logs it, counts it and starts fresh).

Why not the rules: a record holds what was learned, never how to learn.
:func:`decode` takes the current :class:`~models.calibration.CalibrationRules`,
so a new coverage target, ACI step, bias fading or drift threshold applies
to a restored partition at once. The ACI level is stored as its shift from
the nominal miss rate for the same reason, and score windows longer than
the current ``score_days`` are cut to it.

Why this layout (fixed little-endian ``struct`` fields, then raw float16
arrays) rather than JSON or msgpack: the bulk of a record is the conformal
scores, up to ``score_days × score_sample`` float16 per group and horizon
(16.8 KB per group at the defaults), which as JSON numbers take about eight
times the bytes (measured: 67 KB of scores of four groups, 521 KB as JSON)
and parse slower; the few scalars are float64, so a round trip is exact,
which the tests check bit for bit. A fixed layout also leaves nothing to
interpret: every length is checked against the bytes present, every flag
is 0 or 1, no learned number is NaN, and the bias, ACI shift, spread and
detector sums are finite. Not compressed: zlib saves a
quarter (68 KB to 51 KB) at the cost of a second parser to harden against
bombs, and Kafka's producer compression does the same on the wire.

Layout, version 3 (``<`` little-endian; u8/u32 unsigned, f64 double, f16 half)::

    header   magic "TCAL", version u8, horizons u8, groups u32
    group    name length u32, name UTF-8,
             spread known u8, spread f64 (log1p units²),
             Page-Hinkley (t units): count f64, mean f64, sum up f64,
                           sum down f64, min up f64 (+inf before any
                           input), max down f64, fired u8,
             day level known u8, day level f64 (log1p units),
             day spread f64 (log1p units²)
             per horizon: days u32, bias started u8, bias f64 (log1p units),
                          ACI shift f64 (miss rate),
                          guard losses (units), each started u8 and f64: the
                          model's p50, the biased p50, the model's interval
                          ends, the conformal ends,
                          score days u32,
                          scores per day u32 × score days, scores f16 × their sum

The river objects are rebuilt from these numbers by :mod:`models.river_state`.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from models.calibration import GUARD_LOSSES, CalibrationRules, Calibrator, GroupState, HorizonState
from models.river_state import (PageHinkleyState, build_ewmean, build_page_hinkley, ewmean_state,
                                page_hinkley_state)

MAGIC = b"TCAL"
VERSION = 3  # 3: the guard's losses and the day-to-day spread; 2: scores in log1p units (CQR); 1 had half-widths
REASONS = ("pickle", "magic", "version", "truncated", "malformed")  # bounded: metric label values

_HEADER = struct.Struct("<4sB")  # magic, version: read alone, a later version may lay out the rest differently
_SIZES = struct.Struct("<BI")  # horizons, groups
_U32 = struct.Struct("<I")
_GROUP = struct.Struct("<Bd6dBBdd")  # spread known, spread, Page-Hinkley numbers, fired, day level known, level, spread
_HORIZON = struct.Struct("<IBdd" + "Bd" * len(GUARD_LOSSES) + "I")  # days, bias, ACI shift, guard losses, score days


class RecordError(ValueError):
    """A state record that is not what it claims to be; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r}: add it to REASONS (a metric label value)")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def looks_like_pickle(blob: bytes) -> bool:
    """Whether ``blob`` starts like a pickle of protocol 2 or later (PROTO opcode)."""
    return len(blob) >= 2 and blob[0] == 0x80 and 2 <= blob[1] <= 5


# --- encode -----------------------------------------------------------------------------


def encode(cal: Calibrator) -> bytes:
    """``cal``'s learned state as a record of :data:`VERSION` (its rules are not stored)."""
    parts = [_HEADER.pack(MAGIC, VERSION), _SIZES.pack(cal.n_horizons, len(cal.groups))]
    for name, g in cal.groups.items():
        raw = name.encode()
        parts += [_U32.pack(len(raw)), raw]
        ph = page_hinkley_state(g.detector)
        parts.append(_GROUP.pack(g.spread is not None, g.spread or 0.0, *ph.as_tuple()[:6], ph.drift_detected,
                                 g.day_level is not None, g.day_level or 0.0, g.day_spread))
        for h in g.horizons:
            started, bias = ewmean_state(h.bias)
            counts = np.array([len(s) for s in h.scores], dtype="<u4")
            guard = [x for k in GUARD_LOSSES for x in ewmean_state(getattr(h, k))]
            parts += [_HORIZON.pack(h.days, started, bias, h.shift, *guard, len(counts)), counts.tobytes()]
            parts += [np.asarray(s, dtype="<f2").tobytes() for s in h.scores]
    return b"".join(parts)


# --- decode -----------------------------------------------------------------------------


class _Reader:
    """Reads ``blob`` front to back; running past its end is a truncated record."""

    def __init__(self, blob: bytes) -> None:
        self.view = memoryview(blob)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n > len(self.view) - self.pos:
            raise RecordError("truncated", f"needs {n} bytes at offset {self.pos}, has {len(self.view) - self.pos}")
        out = self.view[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, s: struct.Struct) -> tuple:
        return s.unpack(self.take(s.size))

    def array(self, dtype: str, count: int) -> np.ndarray:
        size = np.dtype(dtype).itemsize
        return np.frombuffer(self.take(count * size), dtype=dtype).copy()


def _flag(value: int, what: str) -> bool:
    if value > 1:
        raise RecordError("malformed", f"{what} flag is {value}, not 0 or 1")
    return bool(value)


def _finite(what: str, *values: float) -> None:
    if not all(math.isfinite(v) for v in values):
        raise RecordError("malformed", f"{what} is not finite")


def decode(blob: bytes, rules: CalibrationRules, horizons: int) -> Calibrator:
    """The calibrator :func:`encode` wrote into ``blob``, with the current ``rules`` and ``horizons`` horizons.

    Raises :class:`RecordError` for anything else: a pickle, another magic,
    another version, a truncated record or impossible numbers.
    """
    blob = bytes(blob)
    if blob[:4] != MAGIC:
        if looks_like_pickle(blob):
            raise RecordError("pickle", "a pickle, never loaded (it could run code)")
        raise RecordError("magic", f"starts with {blob[:4]!r}, not {MAGIC!r}")
    r = _Reader(blob)
    _, version = r.unpack(_HEADER)
    if version != VERSION:
        raise RecordError("version", f"version {version}, this trendcast reads {VERSION}")
    n_horizons, n_groups = r.unpack(_SIZES)
    if n_horizons != horizons:
        raise RecordError("malformed", f"{n_horizons} horizons, the worker forecasts {horizons}")
    cal = Calibrator(rules, horizons)
    for _ in range(n_groups):
        name, group = _group(r, rules, horizons)
        if name in cal.groups:
            raise RecordError("malformed", f"group {name!r} twice")
        cal.groups[name] = group
    if r.pos != len(blob):
        raise RecordError("malformed", f"{len(blob) - r.pos} bytes after the last group")
    return cal


def _group(r: _Reader, rules: CalibrationRules, horizons: int) -> tuple[str, GroupState]:
    (length,) = r.unpack(_U32)
    try:
        name = str(r.take(length), "utf-8")
    except UnicodeDecodeError:
        raise RecordError("malformed", "a group name is not UTF-8") from None
    known, spread, n, mean, up, down, min_up, max_down, fired, level_known, level, day_spread = r.unpack(_GROUP)
    _finite(f"group {name!r}'s spreads or drift detector", spread, n, mean, up, down, max_down, level, day_spread)
    if spread < 0 or day_spread < 0 or n < 0 or math.isnan(min_up):
        raise RecordError("malformed", f"group {name!r}: negative spread or count, or no minimum")
    detector = build_page_hinkley(
        PageHinkleyState(n, mean, up, down, min_up, max_down, _flag(fired, "drift")),
        min_instances=rules.drift_warmup_days, delta=rules.drift_delta, threshold=rules.drift_threshold)
    return name, GroupState([_horizon(r, rules, name) for _ in range(horizons)], detector,
                            spread if _flag(known, "spread") else None,
                            level if _flag(level_known, "day level") else None, day_spread)


def _horizon(r: _Reader, rules: CalibrationRules, name: str) -> HorizonState:
    days, started, bias, shift, *guard, n_days = r.unpack(_HORIZON)
    losses = guard[1::2]
    _finite(f"group {name!r}'s bias, ACI shift or guard losses", bias, shift, *losses)
    if min(losses) < 0:
        raise RecordError("malformed", f"group {name!r} has a negative guard loss")
    counts = r.array("<u4", n_days)
    values = r.array("<f2", int(counts.sum(dtype=np.int64)))
    if np.isnan(values).any():
        raise RecordError("malformed", f"group {name!r} has NaN conformal scores")
    if (counts % 2).any():
        raise RecordError("malformed", f"group {name!r} has a day of conformal scores without both halves")
    scores = np.split(values, np.cumsum(counts)[:-1]) if n_days else []
    return HorizonState(build_ewmean(rules.bias_fading, _flag(started, "bias"), bias), shift,
                        scores[-rules.score_days:], days,
                        **{k: build_ewmean(rules.guard_fading, _flag(f, "guard loss"), v)
                           for k, f, v in zip(GUARD_LOSSES, guard[::2], losses)})
