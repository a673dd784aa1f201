"""The one place that reads and rebuilds the private state of river's objects.

river has no public way to save an estimator's state as numbers and build
it back (its objects pickle, and a pickle read from a topic can run code).
The calibration keeps two kinds of river object, and their state is this:

* ``stats.EWMean`` (a Rust object since river 0.22): the mean, and whether
  it has been updated at all (its first update sets the mean, later ones
  blend). The flag is read from the Rust object's ``__getstate__`` bytes,
  whose layout is checked on every read; the state is rebuilt through the
  public API (a first ``update`` with the mean sets both).
* ``drift.PageHinkley``: the running mean of its inputs (a ``stats.Mean``:
  count and mean), the two cumulative sums, their extremes, and whether the
  last update fired. Read and written as private attributes, after checking
  that the object has exactly the attributes expected.

A river upgrade that changes either raises :class:`RiverStateError` here,
and ``tests/unit/test_river_state.py`` fails loudly: update this module,
not its callers. The hyperparameters (fading factor, threshold, delta,
warm-up) are not state: the caller passes the current ones.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from river import stats

if TYPE_CHECKING:
    from river import drift

# RsEWMean.__getstate__ (bincode, little-endian): mean f64, alpha f64, 1 - alpha f64, started bool, alpha f64.
_EWMEAN_LAYOUT = struct.Struct("<ddd?d")

# Every instance attribute of a PageHinkley (river 0.26): its configuration and its state.
PAGE_HINKLEY_CONFIG = frozenset({"min_instances", "delta", "threshold", "alpha", "mode", "_test_drift"})
PAGE_HINKLEY_STATE = frozenset({"_x_mean", "_sum_increase", "_sum_decrease", "_min_increase", "_max_decrease",
                                "_drift_detected"})


class RiverStateError(RuntimeError):
    """river's internals are not what this module was written for (an upgrade changed them)."""


# --- EWMean ------------------------------------------------------------------------------


def ewmean_state(m: stats.EWMean) -> tuple[bool, float]:
    """``(started, mean)``: whether ``m`` has been updated, and its mean (0.0 before the first update)."""
    raw = m._ewmean.__getstate__()
    if not isinstance(raw, bytes) or len(raw) != _EWMEAN_LAYOUT.size:
        raise RiverStateError(f"river's EWMean state is {type(raw).__name__} of {len(raw)} bytes, "
                              f"expected {_EWMEAN_LAYOUT.size} bytes: river changed, update models/river_state.py")
    mean, alpha, rest, started, alpha_again = _EWMEAN_LAYOUT.unpack(raw)
    if alpha != m.fading_factor or alpha_again != alpha or rest != 1.0 - alpha:
        raise RiverStateError("river's EWMean state layout changed: update models/river_state.py")
    return started, mean


def build_ewmean(fading_factor: float, started: bool, mean: float) -> stats.EWMean:
    """An EWMean with ``fading_factor`` in the state ``(started, mean)`` of :func:`ewmean_state`."""
    m = stats.EWMean(fading_factor)
    if started:
        m.update(mean)  # the first update sets the mean exactly and marks it started
    return m


# --- PageHinkley --------------------------------------------------------------------------


@dataclass(frozen=True)
class PageHinkleyState:
    """The learned numbers of a ``drift.PageHinkley``, in the units of its inputs."""

    n: float  # inputs seen since the last reset
    mean: float  # their mean
    sum_increase: float
    sum_decrease: float
    min_increase: float  # +inf before the first input
    max_decrease: float  # -1 before the first input (river's starting value)
    drift_detected: bool  # the last update fired: the next one resets the detector first

    def as_tuple(self) -> tuple[float, float, float, float, float, float, bool]:
        return (self.n, self.mean, self.sum_increase, self.sum_decrease, self.min_increase, self.max_decrease,
                self.drift_detected)


def _check_page_hinkley(d: drift.PageHinkley) -> None:
    names = set(vars(d))
    if names != PAGE_HINKLEY_CONFIG | PAGE_HINKLEY_STATE or set(vars(d._x_mean)) != {"n", "_mean"}:
        raise RiverStateError(f"river's PageHinkley has attributes {sorted(names)}, expected "
                              f"{sorted(PAGE_HINKLEY_CONFIG | PAGE_HINKLEY_STATE)}: river changed, "
                              "update models/river_state.py")


def page_hinkley_state(d: drift.PageHinkley) -> PageHinkleyState:
    """The learned numbers of ``d``."""
    _check_page_hinkley(d)
    return PageHinkleyState(float(d._x_mean.n), float(d._x_mean._mean), float(d._sum_increase),
                            float(d._sum_decrease), float(d._min_increase), float(d._max_decrease),
                            bool(d._drift_detected))


def new_page_hinkley(*, min_instances: int, delta: float, threshold: float, mode: str = "both") -> drift.PageHinkley:
    """A new river ``drift.PageHinkley``.

    ``river.drift`` is imported here, on first use, not with this module:
    its package imports river's datasets and with them scikit-learn, SciPy
    and pandas (~1-2 s and ~900 modules), which a worker's start to ready
    need not wait for (the worker imports it on a thread meanwhile).
    """
    from river import drift

    return drift.PageHinkley(min_instances=min_instances, delta=delta, threshold=threshold, mode=mode)


def build_page_hinkley(state: PageHinkleyState, *, min_instances: int, delta: float, threshold: float,
                       mode: str = "both") -> drift.PageHinkley:
    """A PageHinkley with the given configuration, in ``state``."""
    if not (math.isfinite(state.n) and state.n >= 0):
        raise ValueError("a PageHinkley count must be finite and >= 0")
    d = new_page_hinkley(min_instances=min_instances, delta=delta, threshold=threshold, mode=mode)
    _check_page_hinkley(d)  # before writing: a misspelt private name would silently become a new attribute
    d._x_mean.n, d._x_mean._mean = state.n, state.mean
    d._sum_increase, d._sum_decrease = state.sum_increase, state.sum_decrease
    d._min_increase, d._max_decrease = state.min_increase, state.max_decrease
    d._drift_detected = state.drift_detected
    return d
