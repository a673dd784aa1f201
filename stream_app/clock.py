"""Event-time clock of one source partition: lateness, bad clocks, closed days.

The clock is the newest event time seen on the partition (across the click,
cart and order topics, which are co-partitioned by SKU). Its watermark trails
it by the grace period: an event older than the watermark is late, and a
daily bucket is closed once the watermark has passed its end.

A producer with a bad clock must not close weeks of buckets: an event more
than ``max_ahead_ms`` ahead of the clock is suspect and rejected. A real jump
in event time (a replay over a holiday gap, a long outage) shows up as a run
of suspect events with no normal event between them; after
``future_confirm`` of them in a row the clock accepts the jump.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream_app.windows import DAY_MS

ON_TIME, LATE, FUTURE = range(3)
UNSET = None


@dataclass
class PartitionClock:
    """Event time of one partition (all times epoch ms).

    Examples
    --------
    >>> c = PartitionClock(grace_ms=3_600_000, max_ahead_ms=3 * 86_400_000, future_confirm=2)
    >>> c.judge(1_000 * 86_400_000 + 5)    # first event sets the clock
    0
    >>> c.judge(1_000 * 86_400_000 - 7_200_000)  # two hours behind, grace is one
    1
    >>> c.judge(1_040 * 86_400_000)        # 40 days ahead: suspect
    2
    >>> c.judge(1_040 * 86_400_000 + 1)    # second in a row: the jump is confirmed
    0
    """

    grace_ms: int
    max_ahead_ms: int
    future_confirm: int
    max_ts: int | None = UNSET
    closed_day: int | None = UNSET  # newest day whose bucket is closed (forecast made)
    _suspects: int = 0
    jumps: int = 0

    def judge(self, ts: int) -> int:
        """Classify an event time as :data:`ON_TIME`, :data:`LATE` or :data:`FUTURE`, advancing the clock."""
        mx = self.max_ts
        if mx is None:
            self.max_ts = ts
            self.closed_day = self.closed_through()
            return ON_TIME
        if ts > mx + self.max_ahead_ms:
            self._suspects += 1
            if self._suspects < self.future_confirm:
                return FUTURE
            self.jumps += 1
            self._suspects = 0
            self.max_ts = ts
            return ON_TIME
        self._suspects = 0
        if ts < mx - self.grace_ms:
            return LATE
        if ts > mx:
            self.max_ts = ts
        return ON_TIME

    @property
    def watermark(self) -> int | None:
        """Event time before which the partition is complete (ms)."""
        return None if self.max_ts is None else self.max_ts - self.grace_ms

    def closed_through(self) -> int | None:
        """The newest day index whose bucket the watermark has closed."""
        wm = self.watermark
        return None if wm is None else wm // DAY_MS - 1

    def advance_to(self, ts: int) -> None:
        """Move the clock forward to ``ts`` without an event (idle partitions)."""
        if self.max_ts is None:
            return
        if ts > self.max_ts:
            self.max_ts = ts

    def take_closed_day(self) -> int | None:
        """If a new day closed since the last call, return it (the newest) and remember it."""
        through = self.closed_through()
        if through is None:
            return None
        if self.closed_day is None or through > self.closed_day:
            self.closed_day = through
            return through
        return None

    def to_dict(self) -> dict:
        """What is persisted in the clock table."""
        return {"max_ts": self.max_ts, "closed_day": self.closed_day}

    def restore(self, saved: dict) -> None:
        """Take the persisted state, never moving the clock backwards."""
        mx, closed = saved.get("max_ts"), saved.get("closed_day")
        if mx is not None and (self.max_ts is None or mx > self.max_ts):
            self.max_ts = mx
        if closed is not None and (self.closed_day is None or closed > self.closed_day):
            self.closed_day = closed
