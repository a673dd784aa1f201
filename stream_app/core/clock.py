"""Event time of one source partition: which records are late, suspect or early, and which days are closed.

The rules (README "Event time"; Kafka Streams and Flink use the same for
tumbling windows):

* **Late is a property of a day's bucket.** An event is late only when its
  day is already closed: on its own topic (the day's end plus the grace
  period is behind the newest event time applied from that topic before
  it, in offset order) or on the partition (the day was forecast). Any
  event of a day still open is applied, whatever order it arrives in.
* **A day closes** on a partition when every active topic has progressed
  past its end plus the grace period. A topic silent for ``idle_s``
  seconds of wall time does not hold days open, and neither does one that
  has not spoken at all within ``idle_s`` of the partition's first event
  (clicks in a dataset of orders only), unless the consumer knows it has
  records not taken in yet (``backlog``): a topic with unread records is
  never idle.
* **Nothing runs ahead of the closed days by more than ``lead_days``.** A
  record whose day is later than that waits (it is not applied, and the
  offsets from it on are not committed) until the day before it closes. So
  when a day closes, every SKU's window holds the same days in a replay at
  any speed as in real time (:mod:`stream_app.core.windows` keeps ``lead_days``
  more buckets than the features read), and in a backlog no topic's fetches
  can push windows weeks ahead of another's.
* **A bad clock is judged against the whole partition.** An event more than
  ``max_ahead_ms`` ahead of its own topic *and* of every other topic of its
  partition is suspect. It waits with the records after it: a normal record
  of its topic behind it refutes it (dead-lettered as ``future``);
  ``future_confirm`` suspects in a row confirm a real jump (a holiday gap in
  a replay); another topic reaching its time clears it (a quiet topic on a
  small catalogue); and if its topic goes idle first, the caller decides
  against wider references (:meth:`PartitionClock.settle`). Valid events of
  a quiet topic are therefore never rejected, only delayed.

Decisions are taken per topic in offset order, so a record's verdict
depends only on the records before it on its topic and on how far the
other topics have come, never on how their fetches interleave.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from stream_app.core.windows import DAY_MS

# Verdicts on the next undecided record of a topic.
ON_TIME, LATE, FUTURE, WAIT = range(4)
N_KINDS = 3


@dataclass
class PartitionClock:
    """Event time of one partition's source topics (times in epoch ms, wall times in seconds).

    ``applied[k]``: newest event time applied from topic ``k``;
    ``seen[k]``: newest event time fetched from it, suspects left out (how
    far the topic has come, for other topics' bad-clock checks);
    ``closed_day``: newest day whose bucket is closed (forecast made).

    Examples
    --------
    >>> day = 86_400_000
    >>> c = PartitionClock(grace_ms=3_600_000, max_ahead_ms=3 * day, future_confirm=2)
    >>> c.decide(0, 1_000 * day + 7_200_000), c.apply(0, 1_000 * day + 7_200_000)  # 02:00 on day 1,000
    (0, None)
    >>> c.decide(0, 1_000 * day - 3_600_000)   # 23:00 the day before: closed on clicks at 01:00
    1
    >>> c.decide(0, 1_000 * day + 3_600_000)   # 01:00, after 02:00: the same day, on time
    0
    >>> c.decide(0, 1_040 * day)               # 40 days ahead of every topic: suspect, it waits
    3
    >>> c.suspect(0, 1_040 * day)
    True
    """

    grace_ms: int
    max_ahead_ms: int
    future_confirm: int
    idle_s: float = 10.0
    lead_days: int = 2
    applied: list = field(default_factory=lambda: [None] * N_KINDS)
    seen: list = field(default_factory=lambda: [None] * N_KINDS)
    cleared: list = field(default_factory=lambda: [None] * N_KINDS)  # a confirmed jump: times up to here are not suspect
    last_wall: list = field(default_factory=lambda: [0.0] * N_KINDS)
    # Topics with records in Kafka not taken in yet (the consumer knows), or taken in and
    # still undecided (the caller's queues): never idle.
    backlog: list = field(default_factory=lambda: [False] * N_KINDS)
    queued: list = field(default_factory=lambda: [False] * N_KINDS)
    closed_day: int | None = None
    jumps: int = 0
    started: float | None = None  # wall time of the partition's first record
    _closed_any: bool = False

    # --- records, in offset order per topic ------------------------------------
    def heard(self, kind: int, times: Iterable[int], now: float) -> None:
        """Records of ``kind`` with these event times were fetched at wall time ``now`` (offset order).

        Their newest time counts as how far the topic has come (``seen``),
        leaving out any that jumps more than ``max_ahead_ms`` ahead of the
        records before it (a suspect, until it is cleared).
        """
        self.last_wall[kind] = now
        if self.started is None:
            self.started = now
        ref = self.reference(kind)
        seen = self.seen[kind]
        reach = self.max_ahead_ms
        for ts in times:
            if ref is None or ts <= ref + reach or self.in_reach(kind, ts):
                if ref is None or ts > ref:
                    ref = ts
                if seen is None or ts > seen:
                    seen = ts
        self.seen[kind] = seen

    def reference(self, kind: int) -> int | None:
        """The event time ``kind``'s next record is judged "ahead" of: its own topic's, or else the partition's."""
        own = self.applied[kind]
        if self.cleared[kind] is not None and (own is None or self.cleared[kind] > own):
            own = self.cleared[kind]
        if own is not None:
            return own
        others = [t for t in self.seen if t is not None]
        return max(others) if others else None

    def ahead(self, kind: int, ts: int) -> bool:
        """More than ``max_ahead_ms`` ahead of its own topic (or of the partition, before the topic spoke)."""
        ref = self.reference(kind)
        return ref is not None and ts > ref + self.max_ahead_ms

    def in_reach(self, kind: int, ts: int) -> bool:
        """Another topic of the partition has come within ``max_ahead_ms`` of ``ts``."""
        return any(t is not None and ts <= t + self.max_ahead_ms for k, t in enumerate(self.seen) if k != kind)

    def decide(self, kind: int, ts: int, lead: bool = True) -> int:
        """Verdict on the next undecided record of topic ``kind``: ON_TIME, LATE, or WAIT.

        WAIT: the record is suspect (see :meth:`suspect` and the module
        docstring; the caller looks at the records behind it) or, with
        ``lead``, its day is more than ``lead_days`` after the newest closed
        day (offline aggregation, which closes no days, passes False).
        """
        day = ts // DAY_MS
        if self._closed_any and day <= self.closed_day:
            return LATE
        own = self.applied[kind]
        if own is not None and day <= (own - self.grace_ms) // DAY_MS - 1:
            return LATE
        if self.ahead(kind, ts) and not self.in_reach(kind, ts):
            return WAIT
        if lead and self.closed_day is not None and day > self.closed_day + 1 + self.lead_days:
            return WAIT
        return ON_TIME

    def suspect(self, kind: int, ts: int) -> bool:
        """True when a record :meth:`decide` answered WAIT waits as a suspect (not for a day to close)."""
        return self.ahead(kind, ts) and not self.in_reach(kind, ts)

    def clear(self, kind: int, ts: int) -> None:
        """A jump to ``ts`` on ``kind`` is real (confirmed or settled): it and what follows are not suspect."""
        self.jumps += 1
        self.cleared[kind] = ts
        if self.seen[kind] is None or ts > self.seen[kind]:
            self.seen[kind] = ts

    def apply(self, kind: int, ts: int) -> None:
        """An on-time event of ``kind`` was applied: advance the topic's clock."""
        own = self.applied[kind]
        if own is None:
            # Days before the partition's first event need no forecast. Until
            # a day has closed, a topic that starts earlier moves that back.
            first = ts // DAY_MS - 1
            if self.closed_day is None or (not self._closed_any and first < self.closed_day):
                self.closed_day = first
        if own is None or ts > own:
            self.applied[kind] = ts
        if self.seen[kind] is None or ts > self.seen[kind]:
            self.seen[kind] = ts

    # --- days ---------------------------------------------------------------------
    @property
    def newest(self) -> int | None:
        """Newest applied event time over the partition's topics (ms)."""
        seen = [t for t in self.applied if t is not None]
        return max(seen) if seen else None

    def watermark(self, kind: int) -> int | None:
        """Event time before which ``kind``'s days are closed on its own topic (ms)."""
        mx = self.applied[kind]
        return None if mx is None else mx - self.grace_ms

    def closed_through(self, now: float, waiting: list | None = None) -> int | None:
        """The newest day every active topic has closed.

        ``waiting[k]``: event time of topic ``k``'s first record waiting for a
        day to close, or None. Such a topic has come at least that far: it
        does not hold open the days before the day before that record's day.
        """
        spoke = [t is not None or (waiting is not None and waiting[k] is not None) for k, t in enumerate(self.applied)]
        if not all(spoke):
            if any(b and not s for b, s in zip(self.backlog, spoke)):
                return None  # a topic that has not spoken yet has records on their way
            if self.started is not None and now - self.started < self.idle_s:
                return None  # a topic that has not spoken yet may still be on its way
        active, every = [], []
        for k in range(N_KINDS):
            t = self.applied[k]
            w = waiting[k] if waiting is not None else None
            if t is None and w is None:
                continue
            mine = None if t is None else (t - self.grace_ms) // DAY_MS - 1
            if w is not None:
                mine = w // DAY_MS - 2 if mine is None else max(mine, w // DAY_MS - 2)
            every.append(mine)
            if now - self.last_wall[k] < self.idle_s or self.backlog[k] or self.queued[k]:
                active.append(mine)
        if active:
            return min(active)
        # Everything is idle: the newest clock is the best we know.
        return max(every) if every else None

    def advance_to(self, ts: int) -> None:
        """Move every started topic clock forward to ``ts`` without an event (idle partitions)."""
        for k, mx in enumerate(self.applied):
            if mx is not None and ts > mx:
                self.applied[k] = ts
                if self.seen[k] is None or ts > self.seen[k]:
                    self.seen[k] = ts

    def take_closed_days(self, now: float, waiting: list | None = None) -> list[int]:
        """The days closed since the last call, oldest first, every one of them.

        Every day is reported, also when one call closes many, so a replay at
        any speed forecasts the same days as real time did.
        """
        through = self.closed_through(now, waiting)
        if through is None or self.closed_day is None or through <= self.closed_day:
            return []
        start = self.closed_day + 1
        self.closed_day = through
        self._closed_any = True
        return list(range(start, through + 1))

    def restore(self, applied: list, closed: int | None, now: float, first_day: int | None = None) -> None:
        """Take a recovered state (per-topic newest event times, last closed day), never moving backwards.

        ``first_day``: with no day closed yet, the day of the partition's
        earliest event: the days from it on close as if its events had been
        applied here (a restored topic clock is not a first event any more,
        so :meth:`apply` cannot set where the days start).
        """
        if closed is None and first_day is not None and not self._closed_any \
                and (self.closed_day is None or first_day - 1 < self.closed_day):
            self.closed_day = first_day - 1
        for k, mx in enumerate(applied):
            if mx is not None and (self.applied[k] is None or mx > self.applied[k]):
                self.applied[k] = mx
                if self.seen[k] is None or mx > self.seen[k]:
                    self.seen[k] = mx
                self.last_wall[k] = now
        if self.started is None:
            self.started = now
        if closed is not None and (self.closed_day is None or closed > self.closed_day):
            self.closed_day = closed
            self._closed_any = True
