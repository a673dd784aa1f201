"""Scoring a feature batch for the tick: the forecaster, its row names, its confidence map, and text embeddings.

Pure of Kafka, Faust and Prometheus (the metrics object is passed in and
used duck-typed), so the tick that calls it is too. Choosing and loading a
forecaster from the settings is the edge's job (:mod:`stream_app.worker.scoring`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.baselines import EwmaForecaster
from models.confidence import ConfidenceMap
from models.fallback import GuardedForecaster
from models.interface import TEXT_DIM, FeatureBatch, ForecastBatch, Forecaster
from models.text import pack_embedding, unpack_embeddings

TEXT_HASH_BYTES = 8  # an embedding record starts with a hash of the text it embeds


@dataclass
class Scorer:
    """Runs a forecaster on feature batches for the worker.

    ``forecaster`` is usually a :class:`~models.fallback.GuardedForecaster`
    (the model, with the baseline standing in for rows it cannot score);
    ``encoder`` embeds catalog text for it, or is ``None`` when no model uses text.
    """

    forecaster: Forecaster
    device: str = "cpu"
    encoder: Any = None
    metrics: Any = None  # stream_app.worker.metrics.Metrics, duck-typed: the core imports no Prometheus
    confidence: ConfidenceMap | None = None  # the checkpoint's stage-alert confidence map (None: raw)

    def stage_confidence(self, raw: np.ndarray) -> np.ndarray:
        """A stage change's published confidence from the tracker's raw one (:mod:`models.confidence`)."""
        return np.asarray(raw, dtype=np.float32) if self.confidence is None else self.confidence(raw)

    def score(self, features: FeatureBatch) -> tuple[ForecastBatch, list[dict]]:
        """Forecasts for a batch and, per row, the ``model`` field of its message."""
        t0 = time.perf_counter()
        fb = self.forecaster.predict(features)
        dt = time.perf_counter() - t0
        f = self.forecaster
        if isinstance(f, GuardedForecaster):
            models = f.model_fields(fb)
        else:
            models = [{"name": f.name, "version": f.version}] * len(features)
        if self.metrics is not None:
            self.metrics.scoring_seconds.labels(self.device).observe(dt)
            if fb.fallback is not None and (k := int(fb.fallback.sum())):
                self.metrics.model_fallbacks.labels(fb.fallback_reason).inc(k)
        return fb, models

    @property
    def model_serving(self) -> bool:
        """Whether the forecaster asked for serves: False only when a model was asked for and did not load."""
        f = self.forecaster
        return not (isinstance(f, GuardedForecaster) and f.primary is None)

    @property
    def serving(self) -> str:
        """``"model"`` or ``"baseline"``: which kind of forecaster makes the forecasts."""
        f = self.forecaster
        if isinstance(f, GuardedForecaster):
            f = f.primary if f.primary is not None else f.fallback
        return "baseline" if isinstance(f, EwmaForecaster) else "model"

    @property
    def model(self) -> tuple[str, str]:
        """Name and version of the forecaster the worker means to use (the baseline when no model loaded)."""
        return self.forecaster.name, self.forecaster.version


def serving(current: Scorer, forecaster: Forecaster, confidence: ConfidenceMap | None) -> Scorer:
    """A scorer like ``current`` (device, text encoder, metrics) around another model, backed by the same baseline.

    For a promoted model: ``current`` itself is left as it is, so a tick
    that holds it finishes with the model it started with.
    """
    f = current.forecaster
    baseline = f.fallback if isinstance(f, GuardedForecaster) else f
    return dataclasses.replace(current, forecaster=GuardedForecaster(forecaster, baseline), confidence=confidence)


def text_digest(text: str) -> bytes:
    """A short hash of a catalog text: an embedding is recomputed only when its text changes."""
    return hashlib.blake2b(text.encode(), digest_size=TEXT_HASH_BYTES).digest()


def embedding_record(text: str, vector: np.ndarray) -> bytes:
    """The embeddings table value for ``text``: its digest, then the packed vector."""
    return text_digest(text) + pack_embedding(vector)


def embedding_is_current(record: bytes | None, text: str) -> bool:
    """Whether ``record`` already embeds exactly ``text``."""
    return record is not None and record[:TEXT_HASH_BYTES] == text_digest(text)


def text_features(keys: list[bytes], store: dict[bytes, bytes] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Stacked embeddings ``(n, TEXT_DIM)`` and which SKUs have one, or None with no store."""
    if store is None:
        return None
    records = [store.get(k) for k in keys]
    has = np.fromiter((r is not None for r in records), dtype=bool, count=len(keys))
    text = np.zeros((len(keys), TEXT_DIM), dtype=np.float32)
    if has.any():
        text[has] = unpack_embeddings([r for r in records if r is not None], skip=TEXT_HASH_BYTES)
    return text, has
