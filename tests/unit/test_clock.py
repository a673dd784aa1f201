"""Event-time clock: lateness, bad clocks, confirmed jumps, closed days."""

from stream_app.clock import FUTURE, LATE, ON_TIME, PartitionClock

H = 3_600_000
DAY = 86_400_000
T = 20_000 * DAY  # midnight of a day


def clock(confirm=3):
    return PartitionClock(grace_ms=H, max_ahead_ms=3 * DAY, future_confirm=confirm)


def test_late_is_behind_watermark_within_grace_is_on_time():
    c = clock()
    assert c.judge(T + 10 * H) == ON_TIME
    assert c.judge(T + 9 * H + 1) == ON_TIME  # within the hour of grace
    assert c.judge(T + 9 * H - 1) == LATE
    assert c.max_ts == T + 10 * H


def test_bad_clock_events_are_rejected_and_do_not_close_days():
    c = clock(confirm=3)
    c.judge(T + 10 * H)
    for _ in range(5):  # a bad producer interleaved with good ones
        assert c.judge(T + 30 * DAY) == FUTURE
        assert c.judge(T + 11 * H) == ON_TIME
    assert c.max_ts == T + 11 * H
    assert c.take_closed_day() is None


def test_a_real_jump_is_confirmed_by_a_run_of_consistent_events():
    c = clock(confirm=3)
    c.judge(T + 10 * H)
    assert c.judge(T + 12 * DAY) == FUTURE
    assert c.judge(T + 12 * DAY + 1) == FUTURE
    assert c.judge(T + 12 * DAY + 2) == ON_TIME
    assert c.jumps == 1 and c.max_ts == T + 12 * DAY + 2


def test_a_day_closes_when_the_watermark_passes_its_end():
    c = clock()
    c.judge(T + 2 * H)  # day T/DAY is open
    assert c.take_closed_day() is None
    c.judge(T + DAY + H - 1)  # watermark just before midnight
    assert c.take_closed_day() is None
    c.judge(T + DAY + H)  # watermark at midnight: the day closed
    assert c.take_closed_day() == T // DAY
    assert c.take_closed_day() is None  # reported once
    c.judge(T + 3 * DAY + 2 * H)  # two days at once: the newest is reported
    assert c.take_closed_day() == T // DAY + 2


def test_restore_never_moves_backwards_and_advance_closes_idle_days():
    c = clock()
    c.restore({"max_ts": T + 5 * H, "closed_day": T // DAY - 1})
    c.restore({"max_ts": T, "closed_day": None})
    assert c.max_ts == T + 5 * H
    c.advance_to(T + DAY + 2 * H)
    assert c.take_closed_day() == T // DAY
