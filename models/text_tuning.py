"""Fine-tuning the text encoder with the forecasting loss: launch demand from text.

The pretrained sentence model places texts by meaning, not by how they
sell: "PAPER CRAFT, LITTLE BIRDIE" and "PAPER CHAIN KIT" are neighbours
whatever their orders. Fine-tuning trains the encoder's top ``layers``
(the rest stays as pretrained) together with a linear head that reads the
pooled embedding and predicts the p10/p50/p90 of the units sold over a
launch's first 1, 7 and 14 days, with the pinball loss. The targets are
``log1p`` units: quantiles commute with a monotone map, and launch totals
span 0 to tens of thousands, where the loss on raw units would learn only
the largest few. The tuned encoder's embeddings then pick the neighbours of
:class:`models.launch_prior.LaunchReference`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.interface import HORIZONS, QUANTILES, TEXT_DIM
from models.text import TextEncoder

TUNE_LAYERS = 1  # top transformer layers trained; chosen on UCI launches of May-June 2011
TUNE_EPOCHS = 10


@dataclass(frozen=True)
class TuneReport:
    """Mean pinball loss (log1p units) on the training launches after each epoch."""

    losses: list[float]
    texts: int
    layers: int


def fine_tune(encoder: TextEncoder, texts: list[str], totals: np.ndarray, layers: int = TUNE_LAYERS,
              epochs: int = TUNE_EPOCHS, batch_size: int = 64, lr: float = 2e-5, seed: int = 0) -> TuneReport:
    """Train ``encoder``'s top ``layers`` in place on ``texts`` and their launch ``totals`` ``(n, 3)`` units.

    The encoder's embedding cache is switched off (it is keyed by text, and
    the tuned vectors differ from the pretrained ones). Runs on the
    encoder's device: CUDA when it was built with one.
    """
    import torch

    totals = np.asarray(totals, dtype=np.float32)
    if totals.shape != (len(texts), len(HORIZONS)) or not np.isfinite(totals).all() or len(texts) == 0:
        raise ValueError(f"need one finite row of {len(HORIZONS)} launch totals per text, got {totals.shape}")
    blocks = encoder.model.encoder.layer
    if not 1 <= layers <= len(blocks):
        raise ValueError(f"layers must be 1..{len(blocks)}, got {layers}")
    torch.manual_seed(seed)
    encoder.cache_dir = None
    model = encoder.model
    for p in model.parameters():
        p.requires_grad = False
    trained = [p for block in blocks[-layers:] for p in block.parameters()]
    for p in trained:
        p.requires_grad = True
    head = torch.nn.Linear(TEXT_DIM, len(HORIZONS) * len(QUANTILES)).to(encoder.device)
    opt = torch.optim.AdamW([{"params": trained, "lr": lr}, {"params": head.parameters(), "lr": 1e-2}],
                            weight_decay=1e-2)
    levels = torch.tensor(QUANTILES, device=encoder.device)
    y = torch.log1p(torch.from_numpy(totals)).to(encoder.device)
    rng = np.random.default_rng(seed)

    def loss_of(rows, grad: bool):
        with torch.set_grad_enabled(grad):
            pred = head(encoder.pooled([texts[i] for i in rows])).view(len(rows), len(HORIZONS), len(QUANTILES))
            diff = y[rows][:, :, None] - pred
            return torch.maximum(levels * diff, (levels - 1) * diff).mean()

    losses = []
    model.eval()  # dropout off, as in the probe these settings were chosen with (docs/MODEL.md, "Product text")
    for _ in range(epochs):
        order = rng.permutation(len(texts))
        for start in range(0, len(texts), batch_size):
            loss = loss_of(order[start : start + batch_size], True)
            opt.zero_grad()
            loss.backward()
            opt.step()
        losses.append(float(np.mean([float(loss_of(np.arange(s, min(s + 256, len(texts))), False))
                                     for s in range(0, len(texts), 256)])))
    for p in model.parameters():
        p.requires_grad = False
    return TuneReport(losses=losses, texts=len(texts), layers=layers)
