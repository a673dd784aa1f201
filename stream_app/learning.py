"""Each partition's learning state (calibrator, pending forecasts) and its records in the learning table.

Calibration is kept per SKU partition, so it moves with the partition when
the group rebalances and scales out with the workers. The "global" group of
a partition's calibrator learns from that partition's SKUs only: SKUs are
spread over partitions by a hash of their id, so every partition sees a
random sample of the catalogue and the global corrections agree across
partitions up to sampling noise, with no coordination between workers.

Table records (keys are ASCII, values bytes, changelog partition = the
SKU partition):

* ``cal:<partition>``: the pickled :class:`~models.calibration.Calibrator`;
* ``pend:<partition>:<day>:<chunk>``: a chunk of the forecasts made at the
  end of ``day`` (:func:`stream_app.outcomes.encode`); a tombstone once
  their longest horizon has closed.
"""

from __future__ import annotations

import logging
import pickle
from collections import defaultdict

from models.calibration import CalibrationRules, Calibrator
from stream_app.metrics import Metrics
from stream_app.outcomes import Pending, decode, encode
from stream_app.ticks import OutcomeStats, TickResult

log = logging.getLogger("trendcast")


class PartitionLearning:
    """Calibrators and pending forecasts of the partitions this worker owns."""

    def __init__(self, rules: CalibrationRules) -> None:
        self.rules = rules
        self.calibrators: dict[int, Calibrator] = {}
        self.pending: dict[int, Pending] = {}
        self._chunks: dict[tuple[int, int], int] = {}  # (partition, day) -> chunks written

    def restore(self, partition: int, table: dict[bytes, bytes]) -> int:
        """Rebuild ``partition``'s state from the recovered table; returns the pending forecasts restored."""
        blob = table.get(f"cal:{partition}".encode())
        self.calibrators[partition] = pickle.loads(blob) if blob else Calibrator(self.rules)
        prefix = f"pend:{partition}:".encode()
        by_day: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
        for key, value in table.items():
            if key.startswith(prefix) and value is not None:
                _, _, day, chunk = key.decode().split(":")
                by_day[int(day)].append((int(chunk), value))
        pending = Pending()
        for day, chunks in by_day.items():
            pending.by_day[day] = decode([v for _, v in sorted(chunks)])
            self._chunks[(partition, day)] = len(chunks)
        self.pending[partition] = pending
        return sum(len(m) for m in pending.by_day.values())

    def tools_for(self, partition: int) -> tuple[Calibrator, Pending]:
        """The partition's calibrator and pending forecasts (new ones if it has none yet)."""
        cal = self.calibrators.setdefault(partition, Calibrator(self.rules))
        return cal, self.pending.setdefault(partition, Pending())

    def records(self, partition: int, day: int, expired: list[int]) -> list[tuple[bytes, bytes | None]]:
        """Table records after a tick of ``day``: the calibrator, ``day``'s forecasts, tombstones for ``expired`` days."""
        out: list[tuple[bytes, bytes | None]] = [
            (f"cal:{partition}".encode(), pickle.dumps(self.calibrators[partition], protocol=5))]
        made = self.pending[partition].by_day.get(day)
        if made is not None:
            chunks = encode(made)
            out += [(f"pend:{partition}:{day}:{i}".encode(), c) for i, c in enumerate(chunks)]
            self._chunks[(partition, day)] = len(chunks)
        for d in expired:
            n = self._chunks.pop((partition, d), 0)
            out += [(f"pend:{partition}:{d}:{i}".encode(), None) for i in range(n)]
        return out

    def forget(self, partitions: set[int]) -> None:
        """Drop the state of partitions that moved to another worker."""
        for p in partitions:
            self.calibrators.pop(p, None)
            self.pending.pop(p, None)
        for key in [k for k in self._chunks if k[0] in partitions]:
            del self._chunks[key]


ROLLING_DAYS = 7  # window of the WAPE and coverage gauges, closed days


def record_outcomes(metrics: Metrics, recent: dict[int, dict[int, OutcomeStats]], result: TickResult,
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
