"""Consumer lag arithmetic (the broker-facing probe is tested in tests/integration/test_observability.py)."""

from stream_app.worker.lag import lags, partition_lag, positions, seconds_behind


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


def test_the_position_is_the_worker_s_own_newest_record_or_the_commit_whichever_is_further():
    committed = {("orders", 0): 40, ("orders", 1): None, ("catalog", 0): 12}
    taken = {("orders", 0): (41, 0), ("orders", 1): (7, 0)}  # the catalog is read by the side inputs
    assert positions(committed, taken) == {("orders", 0): 42, ("orders", 1): 8, ("catalog", 0): 12}
    assert positions({("orders", 0): 50}, {("orders", 0): (41, 0)}) == {("orders", 0): 50}


def test_seconds_behind_is_the_timestamp_gap_and_a_clock_skew_reads_zero():
    assert seconds_behind(3_600_000, 0) == 3600.0
    assert seconds_behind(1_000, 1_500) == 0.0  # producers' clocks disagree: not "ahead"
