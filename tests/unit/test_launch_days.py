"""Which catalog records the worker forecasts at their launch: the per-partition launch days of its catalog table."""

from __future__ import annotations

import orjson

from stream_app.core.partitioning import partition_for
from stream_app.core.windows import DAY_MS
from stream_app.settings import load_settings
from stream_app.worker.side_inputs import SideInputs


def record(sku: str, launched_at: int | None) -> bytes:
    return orjson.dumps({"schema_version": 1, "sku": sku, "title": sku, "description": "", "category": "c",
                         **({} if launched_at is None else {"launched_at": launched_at})})


def test_restored_records_are_placed_by_their_key_and_changes_are_read_again():
    side = SideInputs(load_settings(partitions=4), None, None, None, None, None, None, None)
    keys = [f"sku-{i}".encode() for i in range(40)]
    records = [(k, record(k.decode(), (20_000 + i) * DAY_MS + 5) if i % 2 == 0 else record(k.decode(), None))
               for i, k in enumerate(keys)]
    by_partition = {p: side._launch_days(records, p) or {} for p in range(4)}
    # every record naming a launch, in the partition Kafka's default partitioner gives its key, on its day
    assert {k: d for days in by_partition.values() for k, d in days.items()} == {
        k: 20_000 + i for i, k in enumerate(keys) if i % 2 == 0}
    assert all(partition_for(k, 4) == p for p, days in by_partition.items() for k in days)
    # a new record for a key is read again; a record gone from the table is forgotten
    k0 = keys[0]
    p0 = partition_for(k0, 4)
    changed = [(k0, record("sku-0", 30_000 * DAY_MS)), *records[2:]]
    assert side._launch_days(changed, p0)[k0] == 30_000
    assert keys[1] not in side.launch_index and len(side.launch_index) == len(changed)
