"""The neural forecaster: owns the device, inference mode and numpy <-> torch for the network (or ensemble)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.checkpoint import CheckpointError, load_checkpoint
from models.interface import TEXT_DIM, FeatureBatch, ForecastBatch
from models.network import TrendcastEnsemble, TrendcastNet
from models.text import pick_device
from models.layout import FEATURE_SPEC_VERSION

__all__ = ["DEFAULT_CHECKPOINT", "CheckpointError", "NeuralForecaster", "load_forecaster"]

DEFAULT_CHECKPOINT = Path(__file__).parent / "checkpoints" / "default.pt"


class NeuralForecaster:
    """Implements :class:`~models.interface.Forecaster` with a trained :class:`TrendcastNet`.

    ``predict`` stacks a batch into one tensor per input, runs the network
    under ``torch.inference_mode`` on ``device`` and returns numpy arrays.
    A row whose output is not finite comes back NaN, not hidden: the
    caller (:class:`models.fallback.GuardedForecaster`) decides what to do.
    Histories longer than the network's are cut to their last days,
    shorter ones padded with zero days in front.
    """

    name = "trendcast-net"

    def __init__(self, model: TrendcastNet | TrendcastEnsemble, version: str, device: str = "auto",
                 meta: dict | None = None) -> None:
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.version = version
        self.meta = meta or {}

    def predict(self, features: FeatureBatch) -> ForecastBatch:
        """Quantiles ``(n, 3, 3)`` of units over 1/7/14 days and stage probabilities ``(n, 4)``."""
        if features.spec_version != FEATURE_SPEC_VERSION:
            raise CheckpointError(f"features of spec {features.spec_version} given to a model of spec "
                                  f"{FEATURE_SPEC_VERSION}: build them with models.features.build_features")
        n = len(features)
        history = _fit_days(features.history, self.model.history_days)
        text = features.text if features.text is not None else np.zeros((n, TEXT_DIM), np.float32)
        has_text = features.has_text if features.has_text is not None else np.zeros(n, bool)
        dev = self.device
        with torch.inference_mode():
            q, logits, _ = self.model(
                torch.as_tensor(history, dtype=torch.float32).to(dev),
                torch.as_tensor(features.days_since_first_sale, dtype=torch.float32).to(dev),
                torch.as_tensor(features.as_of_weekday).to(dev),
                torch.as_tensor(text, dtype=torch.float32).to(dev),
                torch.as_tensor(has_text, dtype=torch.bool).to(dev),
            )
            probs = torch.softmax(logits, dim=1)
        return ForecastBatch(quantiles=q.cpu().numpy(), stage_probs=probs.cpu().numpy())


def _fit_days(history: np.ndarray, days: int) -> np.ndarray:
    have = history.shape[2]
    if have == days:
        return history
    if have > days:
        return history[:, :, -days:]
    return np.concatenate([np.zeros((*history.shape[:2], days - have), history.dtype), history], axis=2)


def load_forecaster(path: str | Path = DEFAULT_CHECKPOINT, device: str = "auto") -> NeuralForecaster:
    """The forecaster of the checkpoint at ``path``; :class:`CheckpointError` (one line) when it cannot be used."""
    model, meta = load_checkpoint(path)
    return NeuralForecaster(model, meta["id"], device=device, meta=meta)
