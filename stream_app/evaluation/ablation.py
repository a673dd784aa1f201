"""Ablations: the same model scored with one kind of input taken away, to show what each input earns.

The model is not retrained: the input is removed at scoring time the way
the worker meets it missing. Without text, every SKU looks like one with no
catalog record (the network's learned "unknown" text vector); without
clicks and carts, the funnel channels of the history are zeros, as for a
shop that sends orders only. A difference is what the trained model draws
from that input, not what a model trained without it could do.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from models.interface import FeatureBatch, ForecastBatch, Forecaster
from models.panel import FUNNEL, Panel

ABLATIONS = {"text": "without text", "clicks": "without clicks and carts"}


def ablate(features: FeatureBatch, drop: str) -> FeatureBatch:
    """``features`` with the input ``drop`` (a key of :data:`ABLATIONS`) taken away."""
    if drop == "text":
        n = len(features)
        text = None if features.text is None else np.zeros_like(features.text)
        return dataclasses.replace(features, text=text, has_text=np.zeros(n, dtype=bool))
    if drop == "clicks":
        history = features.history.copy()
        history[:, FUNNEL, :] = 0.0
        return dataclasses.replace(features, history=history)
    raise ValueError(f"unknown ablation {drop!r}; one of {', '.join(ABLATIONS)}")


class Ablated:
    """A forecaster that scores ``model`` on features without the input ``drop``."""

    def __init__(self, model: Forecaster, drop: str) -> None:
        if drop not in ABLATIONS:
            raise ValueError(f"unknown ablation {drop!r}; one of {', '.join(ABLATIONS)}")
        self.model, self.drop = model, drop
        self.name = f"{model.name} {ABLATIONS[drop]}"
        self.version = model.version
        self.predicts_stages = getattr(model, "predicts_stages", True)

    def predict(self, features: FeatureBatch) -> ForecastBatch:
        """The model's forecasts for ``features`` with the input taken away."""
        return self.model.predict(ablate(features, self.drop))


def inputs_present(panel: Panel, rows: np.ndarray) -> dict[str, bool]:
    """Which ablatable inputs the evaluated SKUs ``rows`` of ``panel`` have at all.

    Taking away an absent input changes nothing, so its ablation is left
    out with a note (the UCI file has orders only: no clicks or carts).
    """
    return {"text": bool(panel.has_text[rows].any()), "clicks": panel.has_funnel}
