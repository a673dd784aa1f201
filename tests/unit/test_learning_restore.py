"""A partition's learning state restored from its table: current settings apply, bad records start fresh."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest

from models.calibration import CalibrationRules
from models.calibration_codec import encode as encode_calibrator
from stream_app.core.learning import PartitionLearning
from stream_app.worker.metrics import Metrics
from stream_app.core.outcomes import Made, encode

H = 3


class Evil:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def made(n: int, seed: int = 0) -> Made:
    rng = np.random.default_rng(seed)
    q = np.sort(rng.gamma(2.0, 5.0, size=(n, H, 3)), axis=2).astype(np.float32)
    return Made([f"S{i}".encode() for i in range(n)], q, q, np.array(["toys"] * n, dtype=object))


def learned_table(rules: CalibrationRules, days: int = 8) -> dict[bytes, bytes]:
    """The learning table of partition 0 after ``days`` ticks of a worker with ``rules``."""
    rng = np.random.default_rng(3)
    learning = PartitionLearning(rules)
    cal, pending = learning.tools_for(0)
    m = made(300)
    table: dict[bytes, bytes] = {}
    for day in range(100, 100 + days):
        y = rng.poisson(1.4 * m.quantiles[:, 0, 1])  # the forecasts were 1.4x too low
        cal.learn(0, m.quantiles[:, 0], y, m.groups)
        pending.add(day, m)
        for key, value in learning.records(0, day, pending.expire(day)):
            if value is None:
                table.pop(key, None)
            else:
                table[key] = value
    return table


def rejected(metrics: Metrics, record: str, reason: str) -> float:
    return metrics.registry.get_sample_value("trendcast_state_records_rejected_total",
                                             {"record": record, "reason": reason}) or 0.0


def test_a_restored_calibrator_follows_the_current_settings():
    table = learned_table(CalibrationRules(coverage=0.8))
    old = PartitionLearning(CalibrationRules(coverage=0.8))
    new_rules = CalibrationRules(coverage=0.95, aci_step=0.2, drift_threshold=4.0)
    new = PartitionLearning(new_rules)
    assert old.restore(0, table) == new.restore(0, table) == 300 * 8
    was, now = old.calibrators[0], new.calibrators[0]
    assert now.rules == new_rules and now.groups[""].horizons[0].days == 8
    assert now.groups["toys"].detector.threshold == 4.0
    q = made(50, seed=1).quantiles.astype(float)
    groups = np.array(["toys"] * 50, dtype=object)
    a, b = was.correct(q, groups)[:, 0], now.correct(q, groups)[:, 0]
    np.testing.assert_array_equal(a[:, 1], b[:, 1])  # the learned bias is kept
    st_was, st_now = was.groups["toys"].horizons[0], now.groups["toys"].horizons[0]
    assert st_now.widens() == st_was.widens()  # and the guard's verdicts
    # the 95 % conformal ends lie further out from the first tick; on these outcomes they have not beaten the
    # model's own ends, so the guard publishes those (around the biased p50) under either coverage
    assert all(n > o for n, o in zip(st_now.width(1 - 0.95), st_was.width(1 - 0.8)))
    assert not st_now.widens()
    np.testing.assert_array_equal(a, b)


def test_a_pickled_calibrator_is_refused_logged_counted_and_replaced(tmp_path, caplog):
    marker = tmp_path / "pwned"
    table = learned_table(CalibrationRules())
    table[b"cal:0"] = pickle.dumps(Evil(marker))
    metrics = Metrics.create()
    learning = PartitionLearning(CalibrationRules(), metrics)
    with caplog.at_level(logging.WARNING, logger="trendcast"):
        assert learning.restore(0, table) == 300 * 8  # the pending forecasts are fine and kept
    assert not marker.exists()
    assert learning.calibrators[0].groups == {}  # fresh
    assert rejected(metrics, "calibrator", "pickle") == 1
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "partition 0" in line and "cal:0" in line and "pickle" in line and "starts fresh" in line
    # The next tick overwrites the record with one that decodes.
    out = dict(learning.records(0, 200, []))
    assert out[b"cal:0"] == encode_calibrator(learning.calibrators[0])


@pytest.mark.parametrize("value, reason", [(b"TCAL\x09\x03", "version"), (b"TCAL\x03", "truncated"),
                                           (b"\x00" * 30, "magic")])
def test_any_unreadable_calibrator_starts_fresh(value, reason):
    metrics = Metrics.create()
    learning = PartitionLearning(CalibrationRules(), metrics)
    learning.restore(2, {b"cal:2": value})
    assert learning.calibrators[2].groups == {} and rejected(metrics, "calibrator", reason) == 1


def test_a_damaged_pending_day_is_dropped_and_deleted_while_the_others_are_kept(caplog):
    table = learned_table(CalibrationRules(), days=4)
    table[b"pend:0:101:0"] = b"garbage"
    table[b"pend:0:x:0"] = encode(made(2))[0]  # a key no worker writes
    metrics = Metrics.create()
    learning = PartitionLearning(CalibrationRules(), metrics)
    with caplog.at_level(logging.WARNING, logger="trendcast"):
        assert learning.restore(0, table) == 300 * 3
    assert sorted(learning.pending[0].by_day) == [100, 102, 103]
    assert rejected(metrics, "pending", "magic") == 1 and rejected(metrics, "pending", "malformed") == 1
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
    deletes = [k for k, v in learning.records(0, 104, []) if v is None]
    assert sorted(deletes) == [b"pend:0:101:0", b"pend:0:x:0"]
    assert not [k for k, v in learning.records(0, 105, []) if v is None]  # deleted once
