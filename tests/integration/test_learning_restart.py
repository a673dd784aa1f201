"""SIGKILL the worker: its calibrators and the forecasts awaiting their outcome survive the restart.

Both live in the ``partition-learning-v1`` table (changelog-backed). Read
back with an independent consumer, each partition's calibrator must keep
counting days across the crash instead of starting over, and the 14-day
horizon must learn from forecasts the first worker made: the second worker
runs for fewer than 14 days of event time, so those outcomes can only come
from restored pending forecasts.
"""

from __future__ import annotations

import signal
from collections import defaultdict

import orjson
import pytest
from kafka_helpers import produce, read_topic, wait_for

from models.calibration import CalibrationRules
from models.calibration_codec import decode
from models.interface import HORIZONS
from stream_app.data.eventfiles import event_files, merged
from stream_app.sim import Simulator, write_simulation
from stream_app.core.windows import DAY_MS

pytestmark = pytest.mark.integration

D0 = 20_000
SPLIT_DAY = D0 + 24  # the first worker sees events before this day, the second the rest


def calibrator_days(run) -> dict[int, list[tuple[int, int, int]]]:
    """Per partition, in changelog order: days learned by the global calibrator for horizons 1, 7 and 14."""
    topic = f"{run.settings.app_id}-partition-learning-v1-changelog"
    out: dict[int, list] = defaultdict(list)
    for rec in read_topic(run.bootstrap, topic, idle_s=1.0):
        if rec.key.startswith(b"cal:") and rec.value:
            glob = decode(rec.value, CalibrationRules(), len(HORIZONS)).groups.get("")
            out[rec.partition].append(tuple(h.days for h in glob.horizons) if glob else (0, 0, 0))
    return out


def test_calibrators_and_pending_forecasts_survive_sigkill(make_run, tmp_path):
    run = make_run(flush_interval_s=0.2)
    folder = tmp_path / "events"
    write_simulation(Simulator(n_skus=60, days=31, start_ms=D0 * DAY_MS, seed=21), folder)
    topic = {k: run.topic(k) for k in ("clicks", "carts", "orders", "catalog")}
    msgs = [(topic[k], v["sku"].encode(), orjson.dumps(v)) for k, v in merged(event_files(folder).values())]
    before = [m for m in msgs if orjson.loads(m[2]).get("ts", 0) < SPLIT_DAY * DAY_MS]
    after = msgs[len(before):]
    assert all(orjson.loads(m[2]).get("ts", 0) >= SPLIT_DAY * DAY_MS for m in after)

    first = run.start_worker()
    produce(run.bootstrap, before)
    # Wait until every partition's calibrator learned 14-day outcomes: days up to SPLIT_DAY - 2 closed.
    wait_for(lambda: (d := calibrator_days(run)) and len(d) == run.settings.partitions
             and all(seq[-1][2] >= 5 for seq in d.values()), 120,
             "the first worker to learn 14-day outcomes on every partition", on_fail=run.logs)
    first.stop(signal.SIGKILL)
    at_crash = {p: seq[-1] for p, seq in calibrator_days(run).items()}

    run.start_worker()
    produce(run.bootstrap, after)
    wait_for(lambda: all(calibrator_days(run)[p][-1][0] >= at_crash[p][0] + 3 for p in at_crash), 120,
             "the second worker to learn from three more days", on_fail=run.logs)

    for p, seq in calibrator_days(run).items():
        # Never back to zero: each record continues from the previous one, across the crash.
        for earlier, later in zip(seq, seq[1:]):
            assert all(b >= a for a, b in zip(earlier, later)), (p, seq)
        # The second worker ran < 14 days of event time: new 14-day outcomes are pre-crash forecasts.
        assert seq[-1][2] > at_crash[p][2], (p, at_crash[p], seq[-1])
