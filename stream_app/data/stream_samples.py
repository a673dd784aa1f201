"""Training samples from the ``training-samples`` topic: inputs and outcomes joined by SKU and day.

The worker publishes a forecast's input when it makes it and each horizon's
outcome when it closes (:mod:`stream_app.core.samples`). :class:`SampleJoin`
takes decoded records in any order, as a consumer reads them from several
partitions, and :meth:`SampleJoin.samples` stacks those with an input and at
least one outcome into :class:`models.training.Samples` (an unknown horizon
is NaN, which the loss skips), with the text embeddings of the worker's
embeddings table. Records of another feature spec are counted and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.interface import HORIZONS, TEXT_DIM
from models.layout import FEATURE_SPEC_VERSION
from models.training import Samples
from stream_app.core.samples import INPUTS, SampleRecord
from stream_app.core.scorer import text_features


@dataclass
class SampleJoin:
    """Inputs and outcomes read so far; ``skipped``: records of another feature spec."""

    spec: int = FEATURE_SPEC_VERSION
    skipped: int = 0
    _inputs: list[SampleRecord] = field(default_factory=list)
    _where: dict[tuple[bytes, int], tuple[int, int]] = field(default_factory=dict)  # (sku, day) -> (record, row)
    _outcomes: dict[tuple[bytes, int], np.ndarray] = field(default_factory=dict)  # (sku, day) -> units per horizon

    def add(self, record: SampleRecord) -> None:
        """Take in one decoded record (a repeated one replaces the first: at-least-once delivery)."""
        if record.spec != self.spec:
            self.skipped += 1
            return
        if record.kind == INPUTS:
            i = len(self._inputs)
            self._inputs.append(record)
            for row, key in enumerate(record.keys):
                self._where[(key, record.day)] = (i, row)
            return
        col = HORIZONS.index(record.horizon)
        for key, units in zip(record.keys, record.units.tolist()):
            got = self._outcomes.get((key, record.day))
            if got is None:
                got = self._outcomes[(key, record.day)] = np.full(len(HORIZONS), np.nan, dtype=np.float32)
            got[col] = units

    def samples(self, embeddings: dict[bytes, bytes] | None = None) -> Samples:
        """Every input with at least one outcome, as training samples (no stage labels: the head is not taught).

        ``embeddings``: the worker's embeddings table (SKU -> record); None
        or a SKU without one: no text, as the worker scores it.
        """
        pairs = sorted((d, k) for (k, d) in self._outcomes if (k, d) in self._where)
        if not pairs:
            raise ValueError("no input has an outcome yet: the worker publishes an outcome once a horizon "
                             f"({min(HORIZONS)} day) has passed after a forecast")
        skus = sorted({k for _, k in pairs})
        row_of = {k: i for i, k in enumerate(skus)}
        days_len = self._inputs[0].history.shape[2]
        history = np.empty((len(pairs), self._inputs[0].history.shape[1], days_len), dtype=np.float32)
        age = np.empty(len(pairs), dtype=np.float32)
        for j, (d, k) in enumerate(pairs):
            rec, row = self._where[(k, d)]
            history[j] = _fit(self._inputs[rec].history[row], days_len)
            age[j] = self._inputs[rec].age[row]
        origin = np.array([d for d, _ in pairs], dtype=np.int64)
        found = text_features(skus, embeddings)
        text, has = found if found is not None else (np.zeros((len(skus), TEXT_DIM), np.float32),
                                                     np.zeros(len(skus), bool))
        return Samples(
            history=history, age=age, weekday=((origin + 3) % 7).astype(np.int64),
            sku_row=np.array([row_of[k] for _, k in pairs], dtype=np.int64), origin=origin,
            targets=np.stack([self._outcomes[(k, d)] for d, k in pairs]),
            stage=np.full(len(pairs), -1, dtype=np.int64), text=text, has_text=has, stage_truth=False)


def _fit(history: np.ndarray, days: int) -> np.ndarray:
    """A history cut or zero-padded in front to ``days`` (a worker with another history length wrote it)."""
    have = history.shape[1]
    if have >= days:
        return history[:, have - days:]
    return np.concatenate([np.zeros((history.shape[0], days - have), history.dtype), history], axis=1)
