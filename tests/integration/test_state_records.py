"""A pickle written to the learning changelog never runs: the worker refuses it, counts it and forecasts on.

Before the worker starts, an independent producer writes to
``<app_id>-partition-learning-v1-changelog`` (key ``cal:0``, partition 0)
a pickle whose loading would create a marker file. The worker recovers the
table, refuses the record when partition 0 gets its first events, starts
that partition's calibration fresh and overwrites the record with one of
its own codec. That a restored calibrator takes the current settings is
tested without a broker (tests/unit/test_learning_restore.py).
"""

from __future__ import annotations

import asyncio
import pickle

import numpy as np
import orjson
import pytest
from kafka_helpers import json_values, produce, read_topic, wait_for

from models.calibration import CalibrationRules
from models.calibration_codec import decode
from models.interface import HORIZONS
from stream_app.worker.kafka_io import ensure_topics
from stream_app.core.partitioning import partition_for

pytestmark = pytest.mark.integration

DAY = 86_400_000
D0 = 20_000
DAYS = 3
SKUS = [f"P{i:02d}" for i in range(8)]


class Evil:
    """Unpickled, it would create ``path``: what an attacker with write access to the topic could send."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def produce_to(bootstrap: str, topic: str, partition: int, key: bytes, value: bytes) -> None:
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await p.start()
        try:
            await p.send_and_wait(topic, value, key=key, partition=partition)
        finally:
            await p.stop()

    asyncio.run(run())


def orders(run) -> list[tuple[str, bytes, bytes]]:
    """A few orders a day for every SKU, then a click two days later that closes the order days."""
    rng = np.random.default_rng(4)
    out, n = [], 0
    for day in range(DAYS):
        for sku in SKUS:
            ts = (D0 + day) * DAY + int(rng.integers(0, DAY))
            out.append((ts, sku, {"schema_version": 1, "event_id": f"o{n}", "order_id": f"x{n}", "sku": sku,
                                  "ts": ts, "qty": int(rng.integers(1, 4)), "unit_price": 2.0}))
            n += 1
    msgs = [(run.topic("orders"), sku.encode(), orjson.dumps(v)) for _, sku, v in sorted(out, key=lambda x: x[0])]
    click = {"schema_version": 1, "event_id": "closer", "sku": SKUS[0], "ts": (D0 + DAYS + 1) * DAY + 3_600_000}
    return [*msgs, (run.topic("clicks"), SKUS[0].encode(), orjson.dumps(click))]


def test_a_pickled_calibrator_in_the_changelog_is_refused_and_the_worker_forecasts(make_run, tmp_path):
    run = make_run(forecaster="baseline", flush_interval_s=0.2)
    parts = run.settings.partitions
    on_zero = [s for s in SKUS if partition_for(s.encode(), parts) == 0]
    assert on_zero, "no SKU of the test lands on partition 0"
    marker = tmp_path / "pwned"
    changelog = f"{run.settings.app_id}-partition-learning-v1-changelog"
    asyncio.run(ensure_topics(run.bootstrap, {changelog: parts}, compacted=[changelog]))
    produce_to(run.bootstrap, changelog, 0, b"cal:0", pickle.dumps(Evil(str(marker))))

    worker = run.start_worker()
    produce(run.bootstrap, orders(run))
    worker.wait(lambda m: m.get("trendcast_state_records_rejected_total", 0) >= 1, 60)
    last = (D0 + DAYS) * DAY

    def forecasts_of_partition_zero():
        fs = [f for f in json_values(read_topic(run.bootstrap, run.topic("forecasts"), idle_s=1.0))
              if f["as_of"] == last and f["sku"] in on_zero]
        return fs if {f["sku"] for f in fs} == set(on_zero) else None

    wait_for(forecasts_of_partition_zero, 60, "forecasts of partition 0's SKUs", on_fail=run.logs)
    assert not marker.exists()  # the pickle never ran
    metrics = worker.metrics()
    assert metrics["trendcast_state_records_rejected_total"] == 1
    assert worker.proc.poll() is None  # still running
    text = run.log.read_text()
    assert "partition 0: calibrator record cal:0 rejected (pickle" in text

    # The partition's next tick replaced the pickle with a record of the codec.
    def own_record():
        values = [r.value for r in read_topic(run.bootstrap, changelog, idle_s=1.0) if r.key == b"cal:0"]
        return values[-1] if values and values[-1][:4] == b"TCAL" else None

    blob = wait_for(own_record, 30, "the worker's own cal:0 record", on_fail=run.logs)
    assert decode(blob, CalibrationRules(), len(HORIZONS)).rules == CalibrationRules()
