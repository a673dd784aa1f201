"""The worker's model edge: choose and load the forecaster, the text encoder and the confidence map from the settings.

What scoring does with them is pure and lives in :mod:`stream_app.core.scorer`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from models.baselines import EwmaForecaster
from models.confidence import ConfidenceMap
from models.fallback import GuardedForecaster
from models.interface import Forecaster
from models.layout import FEATURE_SPEC_VERSION
from stream_app.worker.metrics import Metrics
from stream_app.core.scorer import Scorer
from stream_app.settings import Settings, SettingsError

log = logging.getLogger("trendcast")


def build_scorer(settings: Settings, metrics: Metrics | None = None, *, background_text: bool = False) -> Scorer:
    """The scorer ``settings`` ask for.

    ``forecaster="baseline"``: the EWMA baseline alone. ``"model"``: the
    checkpoint at ``model_path`` (the shipped one when unset) on ``device``,
    guarded by the baseline. A checkpoint built for another feature spec is
    refused (:class:`SettingsError`); any other failure to load leaves the
    baseline forecasting every SKU, counted as ``not_loaded`` fallbacks.
    ``background_text``: load the text encoder in a thread
    (:class:`BackgroundEncoder`, the worker's choice: a restart does not
    wait for it) instead of before returning.
    """
    baseline = EwmaForecaster()
    if settings.forecaster == "baseline":
        scorer = Scorer(baseline, metrics=metrics)
    else:
        scorer = _model_scorer(settings, baseline, metrics, background_text)
    if metrics is not None:
        name, version = scorer.model
        metrics.model_info.labels(name, version, scorer.device).set(1)
    return scorer


def _model_scorer(settings: Settings, baseline: Forecaster, metrics: Metrics | None, background_text: bool) -> Scorer:
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
    def load() -> TextEncoder:
        return TextEncoder(device=device, batch_size=settings.embed_batch_size)

    if background_text:
        encoder: Any = BackgroundEncoder(load)
    else:
        try:
            encoder = load()
        except (OSError, RuntimeError) as exc:
            # Without text the model still runs: every SKU gets the learned "unknown" embedding.
            log.warning("text encoder not loaded, SKUs are scored without product text: %s", exc)
            encoder = None
    confidence = ConfidenceMap.from_meta(model.meta)
    log.info("model %s %s on %s, stage-alert confidence %s", model.name, model.version, device,
             f"calibrated on {confidence.fitted_on}" if confidence else "raw (the checkpoint has no map)")
    return Scorer(GuardedForecaster(model, baseline), device=device, encoder=encoder, metrics=metrics,
                  confidence=confidence)


class EncoderUnavailable(RuntimeError):
    """The text encoder did not load: SKUs are scored without product text."""


class BackgroundEncoder:
    """The text encoder, loaded in a thread while the worker joins its group and restores its tables.

    Why: loading transformers and the MiniLM weights takes ~5 s, a third of
    a restart, and nothing needs text before the first catalog record.
    :meth:`encode` waits for the load; if it failed (logged once), it raises
    :class:`EncoderUnavailable` and the SKUs keep the model's learned
    "unknown" text vector, as they would without a catalog.
    """

    def __init__(self, load: Callable[[], Any]) -> None:
        self._encoder: Any = None
        self._error: BaseException | None = None
        self._loaded = threading.Event()
        threading.Thread(target=self._load, args=(load,), name="trendcast-text-encoder", daemon=True).start()

    def _load(self, load: Callable[[], Any]) -> None:
        try:
            self._encoder = load()
        except (OSError, RuntimeError, ImportError) as exc:
            self._error = exc
            log.warning("text encoder not loaded, SKUs are scored without product text: %s", exc)
        finally:
            self._loaded.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the load to end (``timeout`` seconds, None: as long as it takes); True once it loaded."""
        self._loaded.wait(timeout)
        return self._encoder is not None

    def encode(self, texts: list[str]) -> Any:
        """``(len(texts), 384)`` float32 unit vectors (blocks until the encoder is loaded)."""
        if not self.wait():
            raise EncoderUnavailable(f"text encoder not loaded: {self._error}")
        return self._encoder.encode(texts)


def _device(setting: str) -> str:
    import torch

    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        raise SettingsError("setting device (env TRENDCAST_DEVICE) is cuda but no CUDA device is visible; use auto or cpu")
    return setting
