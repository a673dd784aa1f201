"""Per-SKU window state: buckets, roll-over, idempotence, encoding."""

import numpy as np
import pytest

from models.stage_tracker import TrackerState

from stream_app.core.windows import (
    APPLIED,
    DUPLICATE,
    KIND_CART,
    KIND_CLICK,
    KIND_ORDER,
    REDELIVERED,
    WindowSpec,
    day_of,
    event_id_hash,
)

DAY = 86_400_000
D0 = 20_000  # a day index


@pytest.fixture
def spec():
    return WindowSpec(history_days=14, dedup_ids=4)


def apply(w, kind, offset, day, qty=1, revenue=0.0, remove=False, eid=None):
    ts = day * DAY + 3_600_000
    return w.apply(kind, offset, ts, qty, revenue, remove, event_id_hash(eid or f"e{kind}-{offset}"))


def test_events_land_in_their_daily_bucket_by_channel(spec):
    w = spec.new(partition=2)
    assert apply(w, KIND_CLICK, 0, D0) == APPLIED
    assert apply(w, KIND_CART, 0, D0, qty=3) == APPLIED
    assert apply(w, KIND_CART, 1, D0, qty=1, remove=True) == APPLIED
    assert apply(w, KIND_ORDER, 0, D0 - 1, qty=2, revenue=5.0) == APPLIED
    assert apply(w, KIND_ORDER, 1, D0 - 1, qty=3, revenue=1.5) == APPLIED
    s = w.series(D0)
    assert s.shape == (6, 14)  # clicks, cart adds, cart removes, units, revenue, order lines
    assert s[:, -1].tolist() == [1, 3, 1, 0, 0, 0]
    assert s[:, -2].tolist() == [0, 0, 0, 5, 6.5, 2]  # two order lines of 2 and 3 units
    assert w.totals() == {"clicks": 1, "cart_adds": 3, "cart_removes": 1, "units": 5, "revenue": 6.5,
                          "order_lines": 2}
    assert w.partition == 2 and w.first_sale_day == D0 - 1
    assert w.max_ts(KIND_ORDER) == (D0 - 1) * DAY + 3_600_000 and w.max_ts(KIND_CLICK) == D0 * DAY + 3_600_000


def test_roll_over_zeroes_reused_slots_and_drops_days_older_than_history():
    spec = WindowSpec(history_days=14, dedup_ids=4, lead_days=0)  # a ring of exactly the history
    w = spec.new(0)
    for i, d in enumerate(range(D0, D0 + 14)):
        apply(w, KIND_ORDER, i, d, qty=1)
    assert w.totals()["units"] == 14
    # 3 days later: the 3 oldest buckets leave the window, their slots are reused.
    apply(w, KIND_ORDER, 100, D0 + 16, qty=5)
    assert w.totals()["units"] == 11 + 5  # days D0+3..D0+13, plus the new one
    assert w.totals()["order_lines"] == 11 + 1
    s = w.series(D0 + 16)
    assert s[3, -1] == 5 and s[3, -2] == 0 and s[3, -3] == 0 and s[3, -4] == 1
    # A jump longer than the history clears everything.
    apply(w, KIND_ORDER, 101, D0 + 100, qty=7)
    assert w.totals()["units"] == 7


def test_series_before_and_after_head_is_zero_outside_the_window(spec):
    w = spec.new(0)
    apply(w, KIND_ORDER, 0, D0, qty=4)
    assert w.series(D0 + 5)[3].tolist() == [0] * 8 + [4] + [0] * 5
    assert w.series(D0 - 1)[3].sum() == 0  # as of a day before the event
    assert w.series(D0 + 14)[3].sum() == 0  # event left the window


def test_redelivered_offsets_are_skipped_and_duplicate_ids_dropped(spec):
    w = spec.new(0)
    assert apply(w, KIND_ORDER, 10, D0, qty=2, eid="a") == APPLIED
    assert apply(w, KIND_ORDER, 10, D0, qty=2, eid="a") == REDELIVERED
    assert apply(w, KIND_ORDER, 9, D0, qty=2, eid="z") == REDELIVERED
    # Same event id at a new offset: a producer retry.
    assert apply(w, KIND_ORDER, 11, D0, qty=2, eid="a") == DUPLICATE
    # Offsets are tracked per source topic.
    assert apply(w, KIND_CLICK, 5, D0, eid="c") == APPLIED
    assert w.totals()["units"] == 2


def test_dedup_memory_is_bounded_to_the_configured_ids(spec):
    w = spec.new(0)
    for i in range(5):
        apply(w, KIND_CLICK, i, D0, eid=f"id{i}")
    # id0 was evicted (4 slots), so a late producer duplicate of it is accepted again.
    assert apply(w, KIND_CLICK, 5, D0, eid="id0") == APPLIED
    assert apply(w, KIND_CLICK, 6, D0, eid="id4") == DUPLICATE


def test_bytes_round_trip_and_foreign_layout_refused(spec):
    w = spec.new(1)
    apply(w, KIND_ORDER, 0, D0, qty=3, revenue=7.5)
    blob = w.to_bytes()
    assert len(blob) < spec.nbytes / 3  # stored compressed: mostly empty buckets
    w2 = spec.load(blob)
    assert w2.totals() == w.totals()
    np.testing.assert_array_equal(w2.series(D0), w.series(D0))
    with pytest.raises(ValueError, match="history_days"):
        WindowSpec(history_days=56).load(blob)
    with pytest.raises(ValueError, match="layout"):
        spec.load(b"not a state")


def test_state_size_default_spec_is_compact():
    assert WindowSpec().nbytes <= 1904  # raw (56 + 2 days); stored LZ4-compressed


def test_a_forecast_sees_its_whole_history_while_events_of_later_days_are_in(spec):
    """The lead days: as of day d the history is d-13..d whether the ring's head is at d or two days later."""
    w = spec.new(0)
    for i, d in enumerate(range(D0 - 13, D0 + 1)):
        apply(w, KIND_ORDER, i, d, qty=1)
    before = w.series(D0).copy()
    apply(w, KIND_ORDER, 50, D0 + 2, qty=9)
    np.testing.assert_array_equal(w.series(D0), before)
    assert before[3].sum() == 14


def test_forecast_mark_keeps_skus_with_later_events_pending(spec):
    w = spec.new(0)
    apply(w, KIND_ORDER, 0, D0)
    apply(w, KIND_ORDER, 1, D0 + 1)
    assert w.pending_day == D0
    w.mark_forecast(D0)
    assert w.pending_day == D0 + 1  # events of D0+1 still need a forecast
    w.mark_forecast(D0 + 1)
    assert w.pending_day is None


def test_day_of_is_utc_days():
    assert day_of(0) == 0 and day_of(DAY - 1) == 0 and day_of(DAY) == 1


def test_state_batch_forecast_marks_equal_the_per_window_ones():
    from stream_app.core.windows import StateBatch

    spec = WindowSpec(history_days=14, dedup_ids=4)
    rng = np.random.default_rng(1)
    windows = []
    for s in range(20):
        w = spec.new(0)
        for i in range(int(rng.integers(1, 30))):
            day = D0 + int(rng.integers(0, 20))
            apply(w, int(rng.integers(0, 3)), i, day, qty=int(rng.integers(1, 3)), revenue=1.5, eid=f"{s}-{i}")
        windows.append(w)
    as_of = D0 + 9
    batch = StateBatch.from_blobs([w.to_bytes() for w in windows], spec)
    hist, first = batch.histories(as_of)
    np.testing.assert_array_equal(hist, np.stack([w.series(as_of) for w in windows]))
    batch.mark_forecast(as_of)
    for w in windows:
        w.mark_forecast(as_of)
    assert [spec.load(b).to_bytes() for b in batch.blobs()] == [w.to_bytes() for w in windows]


def test_stage_tracker_state_round_trips_through_stored_states(spec):
    from stream_app.core.windows import StateBatch

    rng = np.random.default_rng(2)
    batch = StateBatch.from_blobs([spec.new(0).to_bytes() for _ in range(6)], spec)
    fresh = batch.tracker()
    assert fresh.stage.tolist() == [-1] * 6 and fresh.candidate.tolist() == [-1] * 6
    assert not fresh.smoothed.any()
    probs = rng.dirichlet(np.ones(4), size=6).astype(np.float32)
    state = TrackerState(stage=np.array([0, 1, 2, 3, -1, 1]), since=np.arange(6) + D0,
                         candidate=np.array([-1, 2, 3, -1, 0, 0]), run=np.arange(6),
                         support=rng.random(6).astype(np.float32), smoothed=probs)
    batch.set_tracker(state)
    back = StateBatch.from_blobs(batch.blobs(), spec).tracker()
    for name in ("stage", "since", "candidate", "run"):
        np.testing.assert_array_equal(getattr(back, name), getattr(state, name))
    np.testing.assert_allclose(back.support, state.support, atol=1e-6)
    np.testing.assert_allclose(back.smoothed, probs, atol=1 / 65535)
