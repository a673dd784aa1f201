"""Calibration groups without a category: the sales band of the last 28 days, categories kept as they are."""

from __future__ import annotations

import numpy as np

from models.calibration import CalibrationRules, Calibrator
from models.calibration_groups import LEVEL_NAMES, calibration_groups, level_names


def test_bands_cover_every_level_once_and_keep_categories():
    levels = np.array([0.0, 0.1, 0.25, 0.9, 1.0, 3.99, 4.0, 15.9, 16.0, 500.0])
    assert level_names(levels).tolist() == ["none", "<0.25/d", "0.25-1/d", "0.25-1/d", "1-4/d", "1-4/d",
                                            "4-16/d", "4-16/d", ">=16/d", ">=16/d"]
    cats = np.array(["toys", "unknown", "", "garden"], dtype=object)
    got = calibration_groups(cats, np.array([100.0, 100.0, 0.0, 0.0]))
    assert got.tolist() == ["toys", "unknown:>=16/d", "unknown:none", "garden"]
    assert len(set(LEVEL_NAMES)) == len(LEVEL_NAMES)


def test_a_shift_in_fast_sellers_resets_their_band_only():
    """Slow sellers keep their learned correction when the fast sellers' demand jumps (drift fires once)."""
    rng = np.random.default_rng(3)
    n_slow, n_fast = 200, 200
    level = np.r_[np.full(n_slow, 0.5), np.full(n_fast, 30.0)]
    groups = calibration_groups(np.full(len(level), "unknown", dtype=object), level)
    cal = Calibrator(CalibrationRules(), 1)
    drifted = []
    for day in range(120):
        mean = level * 7 * np.where((np.arange(len(level)) >= n_slow) & (day >= 70), 2.5, 1.0)
        actual = rng.poisson(mean).astype(np.float64)
        q = np.stack([level * 7 * 0.5, level * 7, level * 7 * 1.6], axis=1)[:, None, :]
        drifted += cal.learn(0, q[:, 0], actual, groups)
    assert "unknown:>=16/d" in drifted
    assert "unknown:0.25-1/d" not in drifted


def test_the_skus_of_a_group_share_one_name_object():
    """A partition keeps every SKU's group for 14 days of pending forecasts: one string per SKU was ~60 B each day."""
    levels = np.random.default_rng(3).gamma(0.5, 4.0, size=5000)
    groups = calibration_groups(np.full(5000, "unknown", dtype=object), levels)
    assert len({id(g) for g in groups}) <= len(LEVEL_NAMES)
    assert set(groups.tolist()) <= {f"unknown:{b}" for b in LEVEL_NAMES}
