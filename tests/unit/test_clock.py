"""Event-time clock and the order of decisions: lateness by closed day, bad clocks, jumps, closed days."""

from collections import deque

from stream_app.core.clock import FUTURE, LATE, ON_TIME, WAIT, PartitionClock
from stream_app.core.sequence import decide_queue, settle_queue, waiting_for_day

H = 3_600_000
DAY = 86_400_000
T = 20_000 * DAY  # midnight of a day
D = T // DAY
CLICKS, CARTS, ORDERS = 0, 1, 2


class Feed:
    """One partition: records in, verdicts out, as the worker's ingest takes them (event times only)."""

    def __init__(self, confirm=3, idle_s=10.0, topics=(CLICKS, CARTS, ORDERS), lead_days=2):
        self.c = PartitionClock(grace_ms=H, max_ahead_ms=3 * DAY, future_confirm=confirm, idle_s=idle_s,
                                lead_days=lead_days)
        if set(topics) != {CLICKS, CARTS, ORDERS}:
            self.c.started = -100.0  # the topics without events have long stopped holding days
        self.q = [deque(), deque(), deque()]

    def __call__(self, kind, *times, now=0.0):
        """Take in records of ``kind``; the verdicts of what got decided, in order."""
        c = self.c
        c.heard(kind, times, now)
        self.q[kind].extend(times)
        return [v for _, v in decide_queue(c, kind, self.q[kind], int)]

    def close(self, now=0.0):
        return self.c.take_closed_days(now, [waiting_for_day(self.c, k, q, int) for k, q in enumerate(self.q)])

    def run(self, now=0.0):
        """Close days and decide what that releases until nothing moves (the worker ticks in between)."""
        verdicts = {k: [] for k in range(3)}
        while True:
            for k, q in enumerate(self.q):
                verdicts[k] += [(t, v) for t, v in decide_queue(self.c, k, q, int)]
            if not self.close(now):
                return verdicts


def test_an_event_is_late_only_when_its_day_is_closed():
    f = Feed()
    assert f(ORDERS, T + 10 * H, T + H, T + 23 * H) == [ON_TIME] * 3  # any order within the day
    assert f(ORDERS, T + DAY + 30 * 60_000, T + 23 * H + 30 * 60_000) == [ON_TIME] * 2  # across midnight, in grace
    assert f(ORDERS, T + DAY + 2 * H) == [ON_TIME]  # the orders topic closes day T at T + 1 day + 1 h
    assert f(ORDERS, T + 23 * H, T + DAY + 12 * H) == [LATE, ON_TIME]
    assert f.c.applied[ORDERS] == T + DAY + 12 * H


def test_a_topic_fetched_ahead_makes_no_other_topic_late_and_waits_for_the_days():
    f = Feed()
    assert f(CLICKS, T + 5 * DAY) == [ON_TIME]
    assert f(ORDERS, T + H) == [ON_TIME]  # days behind the clicks, yet on time
    assert f(CARTS, T + 5 * DAY) == []  # more than lead_days after the closed days: it waits
    assert f.close() == []  # the orders hold day T open
    assert f(ORDERS, T + DAY + 2 * H) == [ON_TIME]
    assert f.close() == [D]
    assert len(f.q[CARTS]) == 1 and f.c.decide(CARTS, T + 5 * DAY) == WAIT


def test_a_silent_topic_holds_days_only_for_idle_s_after_start():
    f = Feed(idle_s=10)
    f(ORDERS, T + H, T + 3 * DAY)
    assert f.close(now=5) == []  # clicks and carts may still arrive
    assert f.close(now=10) == [D, D + 1]  # the waiting record proves the topic got that far


def test_an_idle_topic_stops_holding_days_open():
    f = Feed(idle_s=10, topics=(CLICKS, ORDERS))
    f(CLICKS, T + H)
    f(ORDERS, T + 3 * DAY)
    assert f.close(now=5) == []
    assert f.close(now=11) == [D, D + 1]  # all silent 11 s: the newest clock decides


def test_bad_clock_events_are_refuted_by_the_next_normal_event_and_close_no_days():
    f = Feed(confirm=3, topics=(ORDERS,))
    f(ORDERS, T + 10 * H)
    for i in range(5):  # a bad producer interleaved with good ones
        assert f(ORDERS, T + 30 * DAY) == []  # suspect: it waits for what follows
        assert f(ORDERS, T + 11 * H + i) == [FUTURE, ON_TIME]
    assert f.c.applied[ORDERS] == T + 11 * H + 4
    assert f.close() == []


def test_a_real_jump_is_confirmed_by_a_run_of_suspects_and_loses_nothing():
    f = Feed(confirm=3, topics=(ORDERS,))
    f(ORDERS, T + 10 * H)
    assert f(ORDERS, T + 12 * DAY, T + 12 * DAY + 1) == []
    assert f(ORDERS, T + 12 * DAY + 2) == []  # confirmed, now waiting for the days in between to close
    assert f.c.jumps == 1
    assert f.close() == list(range(D, D + 11))
    assert f(ORDERS) == [ON_TIME] * 3


def test_a_quiet_topic_is_judged_against_the_partitions_other_topics():
    f = Feed(topics=(CLICKS, ORDERS))
    f(CLICKS, T + H)
    f(ORDERS, T + 2 * H)
    f(CLICKS, *[T + d * DAY + H for d in range(1, 12)])  # eleven days of clicks, not one order
    f(ORDERS, T + 7 * DAY + 3 * H)  # 7 days after the last order, but the clicks got there too
    got = f.run()
    assert got[ORDERS] == [(T + 7 * DAY + 3 * H, ON_TIME)]
    assert {v for _, v in got[CLICKS]} == {ON_TIME}  # the rest wait for the orders to speak or go idle
    # ...but 400 days ahead of everything is a bad clock, refuted by the next order.
    assert f(ORDERS, T + 400 * DAY) == []
    assert f(ORDERS, T + 7 * DAY + 4 * H) == [FUTURE, ON_TIME]


def test_a_suspect_left_by_an_idle_topic_is_settled_against_a_wider_reference():
    f = Feed(topics=(ORDERS,))
    f(ORDERS, T + H)
    f(ORDERS, T + 5 * DAY)  # alone and far ahead: it waits
    q = f.q[ORDERS]
    assert [v for _, v in settle_queue(f.c, ORDERS, q, int, reach_ms=T + 4 * DAY)] == []  # a real jump...
    assert f.c.jumps == 1 and len(q) == 1  # ...that now waits for its days
    g = Feed(topics=(ORDERS,))
    g(ORDERS, T + H)
    g(ORDERS, T + 400 * DAY)
    assert [v for _, v in settle_queue(g.c, ORDERS, g.q[ORDERS], int, reach_ms=T + DAY)] == [FUTURE]


def test_a_lone_suspect_of_now_is_a_live_streams_next_event_and_one_far_from_now_is_not():
    """After a long quiet spell a live stream's next event is about the wall clock; a bad clock is not."""
    now = T + 30 * DAY
    for ts, reach, want in ((now - H, None, []), (now + 400 * DAY, None, [FUTURE]),
                            (T + 10 * DAY, None, [FUTURE]), (T + 10 * DAY, T + 9 * DAY, [])):
        f = Feed(topics=(ORDERS,))
        f(ORDERS, T + H)
        f(ORDERS, ts)  # alone, far after the topic's last event: it waits
        got = settle_queue(f.c, ORDERS, f.q[ORDERS], int, reach_ms=reach, now_ms=now)
        assert [v for _, v in got] == want, (ts - T) / DAY


def test_a_day_closes_when_every_active_topic_passes_its_end_plus_grace():
    f = Feed(topics=(ORDERS,))
    f(ORDERS, T + 2 * H)  # day D is open
    assert f.close() == []
    f(ORDERS, T + DAY + H - 1)  # watermark just before midnight
    assert f.close() == []
    f(ORDERS, T + DAY + H)  # watermark at midnight: the day closed
    assert f.close() == [D]
    assert f.close() == []  # reported once
    f(ORDERS, T + 3 * DAY + 2 * H)  # two days at once: both, in order
    assert f.close() == [D + 1, D + 2]


def test_every_closed_day_is_reported_however_many():
    f = Feed(topics=(ORDERS,), lead_days=400)
    f(ORDERS, T + H)
    f(ORDERS, *[T + d * DAY for d in range(1, 200)])
    assert f.close() == list(range(D, D + 198))


def test_restore_never_moves_backwards_and_advance_closes_idle_days():
    f = Feed(topics=(ORDERS,))
    c = f.c
    c.restore([None, None, T + 5 * H], D - 1, now=0)
    c.restore([None, None, T], None, now=0)
    assert c.applied[ORDERS] == T + 5 * H and c.applied[CLICKS] is None
    c.advance_to(T + DAY + 2 * H)
    assert f.close() == [D]
