"""The worker's model edge: load the forecaster and the text encoder, score micro-batches, count fallbacks.

The network, the encoder and the fallback rule are pure and live in
:mod:`models`; this module chooses them from the settings, times every model
call by device, names the model that made each forecast, and keeps the
per-SKU text embeddings in their compact table form.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.baselines import EwmaForecaster
from models.confidence import ConfidenceMap
from models.fallback import GuardedForecaster
from models.interface import TEXT_DIM, FeatureBatch, ForecastBatch, Forecaster
from models.text import pack_embedding, unpack_embeddings
from models.layout import FEATURE_SPEC_VERSION
from stream_app.metrics import Metrics
from stream_app.settings import Settings, SettingsError

log = logging.getLogger("trendcast")

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
    metrics: Metrics | None = None
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


def build_scorer(settings: Settings, metrics: Metrics | None = None) -> Scorer:
    """The scorer ``settings`` ask for.

    ``forecaster="baseline"``: the EWMA baseline alone. ``"model"``: the
    checkpoint at ``model_path`` (the shipped one when unset) on ``device``,
    guarded by the baseline. A checkpoint built for another feature spec is
    refused (:class:`SettingsError`); any other failure to load leaves the
    baseline forecasting every SKU, counted as ``not_loaded`` fallbacks.
    """
    baseline = EwmaForecaster()
    if settings.forecaster == "baseline":
        scorer = Scorer(baseline, metrics=metrics)
    else:
        scorer = _model_scorer(settings, baseline, metrics)
    if metrics is not None:
        name, version = scorer.model
        metrics.model_info.labels(name, version, scorer.device).set(1)
    return scorer


def _model_scorer(settings: Settings, baseline: Forecaster, metrics: Metrics | None) -> Scorer:
    from models.checkpoint import SpecMismatch
    from models.neural import DEFAULT_CHECKPOINT, CheckpointError, load_forecaster
    from models.text import TextEncoder

    path = settings.model_path or DEFAULT_CHECKPOINT
    device = _device(settings.device)
    if settings.torch_threads:
        import torch

        # Tiny per-SKU ops: a second intra-op thread mostly waits on the first, and on a
        # busy 2-core host the two spin against each other (one network: ~100k SKUs/s on 1 thread, ~18k/s on 2).
        torch.set_num_threads(settings.torch_threads)
    try:
        model = load_forecaster(path, device=device)  # the one read of the file; it checks the spec
    except SpecMismatch as exc:
        # Scoring other features would publish confident nonsense: refuse, never fall back.
        raise SettingsError(
            f"checkpoint {path} was trained with feature spec {exc.found}, this trendcast builds spec "
            f"{FEATURE_SPEC_VERSION}: retrain it with `trendcast train` or unset TRENDCAST_MODEL_PATH") from None
    except (CheckpointError, OSError, RuntimeError) as exc:
        log.warning("model not loaded, the baseline forecasts every SKU: %s", exc)
        return Scorer(GuardedForecaster(None, baseline, load_error=str(exc)), device="cpu", metrics=metrics)
    try:
        encoder = TextEncoder(device=device, batch_size=settings.embed_batch_size)
    except (OSError, RuntimeError) as exc:
        # Without text the model still runs: every SKU gets the learned "unknown" embedding.
        log.warning("text encoder not loaded, SKUs are scored without product text: %s", exc)
        encoder = None
    confidence = ConfidenceMap.from_meta(model.meta)
    log.info("model %s %s on %s, stage-alert confidence %s", model.name, model.version, device,
             f"calibrated on {confidence.fitted_on}" if confidence else "raw (the checkpoint has no map)")
    return Scorer(GuardedForecaster(model, baseline), device=device, encoder=encoder, metrics=metrics,
                  confidence=confidence)


def _device(setting: str) -> str:
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        raise SettingsError("setting device (env TRENDCAST_DEVICE) is cuda but no CUDA device is visible; use auto or cpu")
    return setting


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
