"""Contract with river's internals: the calibration's river objects rebuilt from numbers behave as the originals.

If one of these fails after a river upgrade, river changed what
``models/river_state.py`` reads or writes: update that module (and bump
the codec version in ``models/calibration_codec.py`` if the numbers change).
"""

from __future__ import annotations

import numpy as np
import pytest
from river import drift, stats

from models.river_state import (PAGE_HINKLEY_CONFIG, PAGE_HINKLEY_STATE, RiverStateError, build_ewmean,
                                build_page_hinkley, ewmean_state, page_hinkley_state)


@pytest.mark.parametrize("fading", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("first", [0.0, -0.3, 2.5])
def test_an_ewmean_rebuilt_at_any_point_continues_bit_for_bit(fading, first):
    rng = np.random.default_rng(1)
    xs = [first, *rng.normal(0, 1, 20).tolist(), 0.0, 0.0]
    original = stats.EWMean(fading)
    assert ewmean_state(original) == (False, 0.0)
    for i, x in enumerate(xs):
        twin = build_ewmean(fading, *ewmean_state(original))
        assert ewmean_state(twin) == ewmean_state(original)
        original.update(x)
        twin.update(x)
        assert twin.get() == original.get(), (i, x)  # exact, not approximate
    assert ewmean_state(original)[0] is True


def test_an_ewmean_updated_once_with_zero_is_started():
    # Its mean reads 0.0 as before the first update, but the next update blends instead of replacing.
    m = stats.EWMean(0.5)
    m.update(0.0)
    assert ewmean_state(m) == (True, 0.0)
    twin = build_ewmean(0.5, True, 0.0)
    twin.update(4.0)
    assert twin.get() == 2.0


def test_a_page_hinkley_rebuilt_at_any_point_fires_when_the_original_does():
    rng = np.random.default_rng(2)
    xs = np.concatenate([rng.normal(0, 1, 40), rng.normal(4, 1, 40), rng.normal(0, 1, 40)])
    cfg = dict(min_instances=7, delta=0.5, threshold=10.0)
    original = drift.PageHinkley(mode="both", **cfg)
    fired = []
    for i, x in enumerate(xs):
        twin = build_page_hinkley(page_hinkley_state(original), **cfg)
        original.update(float(x))
        twin.update(float(x))
        assert twin.drift_detected == original.drift_detected, i
        assert page_hinkley_state(twin) == page_hinkley_state(original), i
        if original.drift_detected:
            fired.append(i)
    assert len(fired) >= 2  # the shift up and the shift back: a fired state was rebuilt and reset as river does


def test_a_page_hinkley_takes_the_configuration_it_is_given_not_the_old_one():
    d = drift.PageHinkley(min_instances=7, delta=0.5, threshold=10.0)
    for x in (0.1, -0.2, 0.3):
        d.update(x)
    rebuilt = build_page_hinkley(page_hinkley_state(d), min_instances=3, delta=0.1, threshold=2.0)
    assert (rebuilt.min_instances, rebuilt.delta, rebuilt.threshold) == (3, 0.1, 2.0)
    assert page_hinkley_state(rebuilt) == page_hinkley_state(d)


def test_the_private_attributes_are_the_ones_this_module_knows():
    """The loud failure on a river upgrade: river added, renamed or removed PageHinkley state."""
    assert set(vars(drift.PageHinkley())) == PAGE_HINKLEY_CONFIG | PAGE_HINKLEY_STATE
    assert set(vars(drift.PageHinkley()._x_mean)) == {"n", "_mean"}


def test_an_unknown_shape_of_river_state_is_refused_not_guessed():
    d = drift.PageHinkley()
    d._new_in_river_2 = 0.0  # what an upgrade adding state would look like
    with pytest.raises(RiverStateError, match="update models/river_state.py"):
        page_hinkley_state(d)

    class Changed:
        def __getstate__(self):
            return b"\x00" * 8

    m = stats.EWMean(0.1)
    m._ewmean = Changed()
    with pytest.raises(RiverStateError, match="update models/river_state.py"):
        ewmean_state(m)


def test_a_worker_imports_nothing_of_river_drift_until_a_calibrator_learns():
    """river.drift's package imports scikit-learn, SciPy and pandas (~1-2 s): not on a worker's way to ready."""
    import subprocess
    import sys

    probe = ("import sys, stream_app.worker.app, stream_app.worker.runner, models.calibration_codec\n"
             "from models.calibration import Calibrator\n"
             "c = Calibrator()\n"
             "print(sorted(m for m in ('river.drift', 'sklearn', 'pandas') if m in sys.modules))\n"
             "c._group('g')\n"
             "print('river.drift' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["[]", "True"]
