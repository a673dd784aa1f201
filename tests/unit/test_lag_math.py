"""Consumer lag arithmetic (the broker-facing probe is tested in tests/integration/test_observability.py)."""

from stream_app.worker.lag import lags, partition_lag


def test_lag_is_end_minus_committed_never_negative():
    assert partition_lag(120, 100) == 20
    assert partition_lag(100, 100) == 0
    # Committed past the reported end: the embedded broker under-reports end offsets.
    assert partition_lag(90, 100) == 0


def test_nothing_committed_means_everything_is_behind():
    assert partition_lag(120, None) == 120
    assert partition_lag(120, -1) == 120  # OffsetFetch's "no offset"
    assert partition_lag(0, None) == 0


def test_lags_per_partition():
    ends = {("orders", 0): 50, ("orders", 1): 10, ("clicks", 0): 7}
    committed = {("orders", 0): 45, ("orders", 1): None}
    assert lags(ends, committed) == {("orders", 0): 5, ("orders", 1): 10, ("clicks", 0): 7}
