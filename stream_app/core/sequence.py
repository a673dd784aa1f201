"""The order in which a topic partition's records are decided: first in, first decided.

Each source topic of a partition has a queue of decoded records in offset
order. The record at its head gets a verdict from the partition's
:class:`~stream_app.core.clock.PartitionClock`; a record that must wait (a
suspect, or a day too far ahead) holds back every record behind it. Why
first-in-first-decided: a SKU's state remembers the highest offset decided
per topic (that is how a record re-delivered after a crash is recognised),
so no record may be decided before an earlier one of its topic; and a
verdict that depends only on the records before it on its topic is the same
whatever the other topics' fetches did meanwhile.

Used by the worker (:mod:`stream_app.core.ingest`) and by the offline aggregation
(:mod:`stream_app.data.offline`), so both judge events by the same rules. Pure.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from stream_app.core.clock import FUTURE, ON_TIME, WAIT, PartitionClock


def decide_queue(clock: PartitionClock, kind: int, queue: deque, ts_of: Callable[[Any], int],
                 lead: bool = True) -> list[tuple[Any, int]]:
    """Take every decidable record off the head of ``queue``, in order; returns ``(item, verdict)`` pairs.

    ``ts_of(item)`` is the item's event time (epoch ms). ON_TIME records
    advance the clock as they are taken. A suspect at the head is refuted
    (``FUTURE``) by a record behind it that is not suspect, cleared by
    ``future_confirm`` suspects in a row (a real jump), and otherwise waits.
    """
    out: list[tuple[Any, int]] = []
    while queue:
        item = queue[0]
        ts = ts_of(item)
        verdict = clock.decide(kind, ts, lead)
        if verdict == WAIT and clock.suspect(kind, ts):
            behind = _suspects_behind(clock, kind, queue, ts_of)
            if behind is None:
                verdict = FUTURE
            elif behind >= clock.future_confirm:
                clock.clear(kind, ts)
                continue
        if verdict == WAIT:
            break
        queue.popleft()
        if verdict == ON_TIME:
            clock.apply(kind, ts)
        out.append((item, verdict))
    return out


def settle_queue(clock: PartitionClock, kind: int, queue: deque, ts_of: Callable[[Any], int],
                 reach_ms: int | None, lead: bool = True, now_ms: int | None = None) -> list[tuple[Any, int]]:
    """Decide the suspects a now idle topic left waiting, then what they held back.

    Nothing more will come to confirm or refute them, so they are judged
    against wider references than the partition: ``reach_ms``, the newest
    event time of the worker's other partitions, and ``now_ms``, the wall
    clock (epoch ms). Within ``max_ahead_ms`` of the first, or of the wall
    clock on either side (an event of now, the next real event of a live
    stream after a long quiet spell), a suspect is a real jump; otherwise a
    bad clock (``FUTURE``). An event of a historical replay is never "of
    now", so the wall clock clears none of them.
    """
    out = decide_queue(clock, kind, queue, ts_of, lead)
    reach = clock.max_ahead_ms
    while queue and clock.suspect(kind, ts := ts_of(queue[0])):
        if (reach_ms is not None and ts <= reach_ms + reach) or (now_ms is not None and abs(ts - now_ms) <= reach):
            clock.clear(kind, ts)
        else:
            out.append((queue.popleft(), FUTURE))
        out += decide_queue(clock, kind, queue, ts_of, lead)
    return out


def waiting_for_day(clock: PartitionClock, kind: int, queue: deque, ts_of: Callable[[Any], int]) -> int | None:
    """Event time of the record at the head of ``queue`` when it waits for a day to close (not a suspect)."""
    if not queue:
        return None
    ts = ts_of(queue[0])
    return None if clock.suspect(kind, ts) else ts


def _suspects_behind(clock: PartitionClock, kind: int, queue: deque, ts_of: Callable[[Any], int]) -> int | None:
    """Suspects in a row from the head (up to ``future_confirm``); None when a record that is not suspect follows."""
    n = 0
    for item in queue:
        if not clock.suspect(kind, ts_of(item)):
            return None
        n += 1
        if n >= clock.future_confirm:
            break
    return n
