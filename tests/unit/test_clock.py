"""Event-time clock: lateness per topic, bad clocks, confirmed jumps, closed days."""

from stream_app.clock import FUTURE, LATE, ON_TIME, PartitionClock

H = 3_600_000
DAY = 86_400_000
T = 20_000 * DAY  # midnight of a day
CLICKS, CARTS, ORDERS = 0, 1, 2


def clock(confirm=3, idle_s=10.0, topics=(CLICKS, CARTS, ORDERS)):
    c = PartitionClock(grace_ms=H, max_ahead_ms=3 * DAY, future_confirm=confirm, idle_s=idle_s)
    for k in (CLICKS, CARTS, ORDERS):
        if k not in topics:  # a topic without events: its hold has passed
            c.started = -100.0
    return c


def test_late_is_behind_the_topics_watermark_within_grace_is_on_time():
    c = clock()
    assert c.judge(ORDERS, T + 10 * H, 0) == ON_TIME
    assert c.judge(ORDERS, T + 9 * H + 1, 0) == ON_TIME  # within the hour of grace
    assert c.judge(ORDERS, T + 9 * H - 1, 0) == LATE
    assert c.max_ts[ORDERS] == T + 10 * H


def test_a_topic_fetched_ahead_does_not_make_another_topic_late():
    c = clock()
    assert c.judge(CLICKS, T + 5 * DAY, 0) == ON_TIME
    assert c.judge(ORDERS, T + H, 0) == ON_TIME  # days behind the clicks, yet on time
    c.judge(CARTS, T + 5 * DAY, 0)
    # ...and the days are not closed until the orders catch up.
    assert c.take_closed_days(0) == []
    c.judge(ORDERS, T + DAY + 2 * H, 0)
    assert c.take_closed_days(0) == [T // DAY]


def test_a_silent_topic_holds_days_only_for_idle_s_after_start():
    c = clock(idle_s=10)
    c.judge(ORDERS, T + H, now=0)
    c.judge(ORDERS, T + 3 * DAY, now=0)
    assert c.take_closed_days(now=5) == []  # clicks and carts may still arrive
    assert c.take_closed_days(now=10) == [T // DAY, T // DAY + 1]


def test_an_idle_topic_stops_holding_days_open():
    c = clock(idle_s=10, topics=(CLICKS, ORDERS))
    c.judge(CLICKS, T + H, now=0)
    c.judge(ORDERS, T + 3 * DAY, now=0)
    assert c.take_closed_days(now=5) == []
    assert c.take_closed_days(now=11) == [T // DAY, T // DAY + 1]  # clicks silent 11 s: orders decide


def test_bad_clock_events_are_rejected_and_do_not_close_days():
    c = clock(confirm=3, topics=(ORDERS,))
    c.judge(ORDERS, T + 10 * H, 0)
    for _ in range(5):  # a bad producer interleaved with good ones
        assert c.judge(ORDERS, T + 30 * DAY, 0) == FUTURE
        assert c.judge(ORDERS, T + 11 * H, 0) == ON_TIME
    assert c.max_ts[ORDERS] == T + 11 * H
    assert c.take_closed_days(0) == []


def test_a_real_jump_is_confirmed_by_a_run_of_consistent_events():
    c = clock(confirm=3)
    c.judge(ORDERS, T + 10 * H, 0)
    assert c.judge(ORDERS, T + 12 * DAY, 0) == FUTURE
    assert c.judge(ORDERS, T + 12 * DAY + 1, 0) == FUTURE
    assert c.judge(ORDERS, T + 12 * DAY + 2, 0) == ON_TIME
    assert c.jumps == 1 and c.max_ts[ORDERS] == T + 12 * DAY + 2


def test_a_day_closes_when_the_watermark_passes_its_end():
    c = clock(topics=(ORDERS,))
    c.judge(ORDERS, T + 2 * H, 0)  # day T/DAY is open
    assert c.take_closed_days(0) == []
    c.judge(ORDERS, T + DAY + H - 1, 0)  # watermark just before midnight
    assert c.take_closed_days(0) == []
    c.judge(ORDERS, T + DAY + H, 0)  # watermark at midnight: the day closed
    assert c.take_closed_days(0) == [T // DAY]
    assert c.take_closed_days(0) == []  # reported once
    c.judge(ORDERS, T + 3 * DAY + 2 * H, 0)  # two days at once: both, in order
    assert c.take_closed_days(0) == [T // DAY + 1, T // DAY + 2]


def test_restore_never_moves_backwards_and_advance_closes_idle_days():
    c = clock(topics=(ORDERS,))
    c.restore([None, None, T + 5 * H], T // DAY - 1, now=0)
    c.restore([None, None, T], None, now=0)
    assert c.max_ts[ORDERS] == T + 5 * H and c.max_ts[CLICKS] is None
    c.advance_to(T + DAY + 2 * H)
    assert c.take_closed_days(0) == [T // DAY]
