"""Each partition's learning state (calibrator, pending forecasts) and its records in the learning table.

Calibration is kept per SKU partition, so it moves with the partition when
the group rebalances and scales out with the workers. The "global" group of
a partition's calibrator learns from that partition's SKUs only: SKUs are
spread over partitions by a hash of their id, so every partition sees a
random sample of the catalogue and the global corrections agree across
partitions up to sampling noise, with no coordination between workers.

Table records (keys are ASCII, values bytes, changelog partition = the
SKU partition):

* ``cal:<partition>``: the partition's :class:`~models.calibration.Calibrator`
  as numbers (:mod:`models.calibration_codec`, never a pickle), restored
  with the current settings' rules;
* ``pend:<partition>:<day>:<chunk>``: a chunk of the forecasts made at the
  end of ``day`` (:func:`stream_app.core.outcomes.encode`); a tombstone once
  their longest horizon has closed. Only a restart reads them: the worker
  holds the forecasts decoded, so the table keeps a chunk in memory only
  until it is sent or restored (:func:`is_pending_record`, :func:`pending_keys`).

A record that does not decode (a pickle, another format or version, a
truncated or damaged value) is refused with one WARNING line naming the
partition and the reason, counted in
``trendcast_state_records_rejected_total{record,reason}``, and deleted with
the partition's next tick; that partition's calibration (or that day's
pending forecasts) starts fresh instead of stopping the worker.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any  # the metrics: stream_app.worker.metrics.Metrics, duck-typed (the offline replay imports no Prometheus)

from models import calibration_codec
from models.calibration import CalibrationRules, Calibrator
from models.calibration_codec import RecordError
from models.interface import HORIZONS
from stream_app.core.outcomes import Pending, decode, encode
from stream_app.core.ticks import OutcomeStats, TickResult

log = logging.getLogger("trendcast")
PENDING_PREFIX = b"pend:"


def is_pending_record(key: bytes) -> bool:
    """Whether ``key`` is a chunk of pending forecasts (kept in the table only until sent)."""
    return key.startswith(PENDING_PREFIX)


def _pending_prefix(partition: int) -> bytes:
    return PENDING_PREFIX + f"{partition}:".encode()


def _pending_key(partition: int, day: int, chunk: int) -> bytes:
    return _pending_prefix(partition) + f"{day}:{chunk}".encode()


def pending_keys(partition: int, keys: Iterable[bytes]) -> list[bytes]:
    """The keys among ``keys`` of ``partition``'s pending-forecast chunks."""
    prefix = _pending_prefix(partition)
    return [k for k in keys if k.startswith(prefix)]


class PartitionLearning:
    """Calibrators and pending forecasts of the partitions this worker owns."""

    def __init__(self, rules: CalibrationRules, metrics: Any = None) -> None:
        self.rules = rules
        self.metrics = metrics
        self.calibrators: dict[int, Calibrator] = {}
        self.pending: dict[int, Pending] = {}
        self._chunks: dict[tuple[int, int], int] = {}  # (partition, day) -> chunks written
        self._rejected: dict[int, list[bytes]] = {}  # partition -> refused keys, deleted by the next records()

    def restore(self, partition: int, table: dict[bytes, bytes]) -> int:
        """Rebuild ``partition``'s state from the recovered table; returns the pending forecasts restored."""
        key = f"cal:{partition}".encode()
        blob = table.get(key)
        cal = None
        if blob:
            try:
                cal = calibration_codec.decode(blob, self.rules, len(HORIZONS))
            except RecordError as exc:
                self._reject(partition, "calibrator", [key], exc, "its calibration starts fresh")
        self.calibrators[partition] = cal if cal is not None else Calibrator(self.rules)
        prefix = _pending_prefix(partition)
        by_day: dict[int, list[tuple[int, bytes, bytes]]] = defaultdict(list)
        for key in pending_keys(partition, table):
            value = table[key]
            if value is not None:
                day, _, chunk = key[len(prefix):].partition(b":")
                if not (day.isdigit() and chunk.isdigit()):
                    self._reject(partition, "pending", [key], RecordError("malformed", f"key {key!r}"), "ignored")
                    continue
                by_day[int(day)].append((int(chunk), key, value))
        pending = Pending()
        for day, chunks in by_day.items():
            chunks.sort()
            try:
                pending.by_day[day] = decode([v for _, _, v in chunks])
            except RecordError as exc:
                self._reject(partition, "pending", [k for _, k, _ in chunks], exc,
                             f"the forecasts made on day {day} are not learned from")
                continue
            self._chunks[(partition, day)] = chunks[-1][0] + 1  # tombstones cover every chunk number
        self.pending[partition] = pending
        return self.waiting(partition)

    def waiting(self, partition: int) -> int:
        """Forecasts of ``partition`` that await their outcome."""
        pending = self.pending.get(partition)
        return 0 if pending is None else sum(len(m) for m in pending.by_day.values())

    def _reject(self, partition: int, record: str, keys: list[bytes], exc: RecordError, outcome: str) -> None:
        """Log and count refused records of ``partition``; they are deleted with its next records."""
        log.warning("partition %d: %s record %s rejected (%s); %s", partition, record,
                    keys[0].decode(errors="replace") + (f" and {len(keys) - 1} more" if len(keys) > 1 else ""),
                    exc, outcome)
        if self.metrics is not None:
            self.metrics.state_records_rejected.labels(record, exc.reason).inc(len(keys))
        self._rejected.setdefault(partition, []).extend(keys)

    def tools_for(self, partition: int) -> tuple[Calibrator, Pending]:
        """The partition's calibrator and pending forecasts (new ones if it has none yet)."""
        cal = self.calibrators.setdefault(partition, Calibrator(self.rules))
        return cal, self.pending.setdefault(partition, Pending())

    def records(self, partition: int, day: int, expired: list[int]) -> list[tuple[bytes, bytes | None]]:
        """Table records after a tick of ``day``: the calibrator, ``day``'s forecasts, tombstones for ``expired`` days."""
        out: list[tuple[bytes, bytes | None]] = [
            (key, None) for key in self._rejected.pop(partition, []) if not key.startswith(b"cal:")]
        out.append((f"cal:{partition}".encode(), calibration_codec.encode(self.calibrators[partition])))
        made = self.pending[partition].by_day.get(day)
        if made is not None:
            chunks = encode(made)
            out += [(_pending_key(partition, day, i), c) for i, c in enumerate(chunks)]
            self._chunks[(partition, day)] = len(chunks)
        for d in expired:
            n = self._chunks.pop((partition, d), 0)
            out += [(_pending_key(partition, d, i), None) for i in range(n)]
        return out

    def forget(self, partitions: set[int]) -> None:
        """Drop the state of partitions that moved to another worker."""
        for p in partitions:
            self.calibrators.pop(p, None)
            self.pending.pop(p, None)
            self._rejected.pop(p, None)
        for key in [k for k in self._chunks if k[0] in partitions]:
            del self._chunks[key]


ROLLING_DAYS = 7  # window of the WAPE and coverage gauges, closed days


def record_outcomes(metrics: Any, recent: dict[int, dict[int, OutcomeStats]], result: TickResult,
                    day: int) -> None:
    """Count a tick's outcomes and drift detections; refresh the rolling WAPE and coverage gauges.

    ``recent``: per horizon (days), per closed day, the summed outcomes of
    this worker; kept to the last :data:`ROLLING_DAYS` days.
    """
    m = metrics
    for category in result.drifted:
        m.drift_detections.labels(category).inc()
        log.warning("drift in category %r: its calibration restarts from today's errors", category)
    for horizon, o in result.outcomes.items():
        h = str(horizon)
        m.outcomes.labels(h).inc(o.n)
        m.outcome_abs_error.labels(h).inc(o.abs_error)
        m.outcome_units.labels(h).inc(o.units)
        m.outcome_covered.labels(h).inc(o.covered)
        days = recent.setdefault(horizon, {})
        acc = days.setdefault(day, OutcomeStats())
        acc.abs_error += o.abs_error
        acc.units += o.units
        acc.covered += o.covered
        acc.n += o.n
        for d in [d for d in days if d <= max(days) - ROLLING_DAYS]:
            del days[d]
        units = sum(a.units for a in days.values())
        if units > 0:
            m.forecast_wape.labels(h).set(sum(a.abs_error for a in days.values()) / units)
        m.interval_coverage.labels(h).set(sum(a.covered for a in days.values()) / sum(a.n for a in days.values()))
