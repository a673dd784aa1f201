"""Event-time clock of one source partition: lateness, bad clocks, closed days.

Click, cart and order topics are co-partitioned by SKU but consumed
independently: in a backlog one topic's fetches can run days ahead of
another's. So each source topic has its own clock (the newest event time seen
on it) and its own watermark (the clock minus the grace period); an event
older than its topic's watermark is late. A daily bucket closes when the
watermarks of all *active* topics of the partition have passed its end; a
topic that has been silent for ``idle_s`` seconds of wall time does not hold
days open, and neither does one that has not spoken at all within ``idle_s``
of the partition's first event (clicks in a dataset of orders only).

A producer with a bad clock must not close weeks of buckets: an event more
than ``max_ahead_ms`` ahead of its topic's clock is suspect and rejected. A
real jump in event time (a replay over a holiday gap) shows up as a run of
suspect events with no normal event between them; after ``future_confirm``
of them in a row the clock accepts the jump.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stream_app.windows import DAY_MS

ON_TIME, LATE, FUTURE = range(3)
N_KINDS = 3


@dataclass
class PartitionClock:
    """Event time of one partition's source topics (times in epoch ms, wall times in seconds).

    Examples
    --------
    >>> day = 86_400_000
    >>> c = PartitionClock(grace_ms=3_600_000, max_ahead_ms=3 * day, future_confirm=2)
    >>> c.judge(0, 1_000 * day + 5, now=0.0)    # first event sets the clicks clock
    0
    >>> c.judge(0, 1_000 * day - 7_200_000, now=0.0)  # two hours behind, grace is one
    1
    >>> c.judge(0, 1_040 * day, now=0.0)        # 40 days ahead: suspect
    2
    >>> c.judge(0, 1_040 * day + 1, now=0.0)    # second in a row: the jump is confirmed
    0
    """

    grace_ms: int
    max_ahead_ms: int
    future_confirm: int
    idle_s: float = 10.0
    max_ts: list = field(default_factory=lambda: [None] * N_KINDS)
    closed_day: int | None = None  # newest day whose bucket is closed (forecast made)
    last_wall: list = field(default_factory=lambda: [0.0] * N_KINDS)
    suspects: list = field(default_factory=lambda: [0] * N_KINDS)
    jumps: int = 0
    started: float | None = None  # wall time of the partition's first event
    _closed_any: bool = False

    def judge(self, kind: int, ts: int, now: float) -> int:
        """Classify an event time as :data:`ON_TIME`, :data:`LATE` or :data:`FUTURE`, advancing the clock.

        ``kind`` is the source topic index, ``now`` the wall time in seconds.
        """
        self.last_wall[kind] = now
        if self.started is None:
            self.started = now
        mx = self.max_ts[kind]
        if mx is None:
            self.max_ts[kind] = ts
            # Days before the first event need no forecast. Until a day has
            # closed, a topic that starts earlier moves that baseline back.
            first = ts // DAY_MS - 1
            if self.closed_day is None or (not self._closed_any and first < self.closed_day):
                self.closed_day = first
            return ON_TIME
        if ts > mx + self.max_ahead_ms:
            self.suspects[kind] += 1
            if self.suspects[kind] < self.future_confirm:
                return FUTURE
            self.jumps += 1
            self.suspects[kind] = 0
            self.max_ts[kind] = ts
            return ON_TIME
        self.suspects[kind] = 0
        if ts < mx - self.grace_ms:
            return LATE
        if ts > mx:
            self.max_ts[kind] = ts
        return ON_TIME

    @property
    def newest(self) -> int | None:
        """Newest event time over the partition's topics (ms)."""
        seen = [t for t in self.max_ts if t is not None]
        return max(seen) if seen else None

    def watermark(self, kind: int) -> int | None:
        """Event time before which ``kind``'s events are late (ms)."""
        mx = self.max_ts[kind]
        return None if mx is None else mx - self.grace_ms

    def closed_through(self, now: float) -> int | None:
        """The newest day index whose bucket every active topic's watermark has closed."""
        if None in self.max_ts and self.started is not None and now - self.started < self.idle_s:
            return None  # a topic that has not spoken yet may still be on its way
        active = [
            t for t, wall in zip(self.max_ts, self.last_wall)
            if t is not None and now - wall < self.idle_s
        ]
        if not active:
            # Everything is idle: the newest clock is the best we know.
            newest = self.newest
            if newest is None:
                return None
            active = [newest]
        return (min(active) - self.grace_ms) // DAY_MS - 1

    def advance_to(self, ts: int) -> None:
        """Move every started topic clock forward to ``ts`` without an event (idle partitions)."""
        for k, mx in enumerate(self.max_ts):
            if mx is not None and ts > mx:
                self.max_ts[k] = ts

    def take_closed_days(self, now: float, max_days: int = 366) -> list[int]:
        """The days closed since the last call, oldest first (at most the newest ``max_days``).

        Every day is reported, also when one batch closes several, so a
        replay at any speed forecasts the same days as real time did.
        """
        through = self.closed_through(now)
        if through is None:
            return []
        if self.closed_day is None or through > self.closed_day:
            start = through - max_days + 1 if self.closed_day is None else self.closed_day + 1
            self.closed_day = through
            self._closed_any = True
            return list(range(max(start, through - max_days + 1), through + 1))
        return []

    def restore(self, max_ts: list, closed: int | None, now: float) -> None:
        """Take a recovered state (per-topic newest event times, last closed day), never moving backwards."""
        for k, mx in enumerate(max_ts):
            if mx is not None and (self.max_ts[k] is None or mx > self.max_ts[k]):
                self.max_ts[k] = mx
                self.last_wall[k] = now
        if self.started is None:
            self.started = now
        if closed is not None and (self.closed_day is None or closed > self.closed_day):
            self.closed_day = closed
            self._closed_any = True
