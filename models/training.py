"""The training loop: Adam on pinball + stage cross-entropy, early stopping on validation, fixed seeds.

Pure of files and terminals: samples in, a trained network and its
validation metrics out; ``on_epoch`` reports progress (the CLI draws it).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch.nn import functional as F

from models.interface import HORIZONS, STAGES
from models.network import UNITS, TrendcastEnsemble, TrendcastNet, pinball_loss

H7 = HORIZONS.index(7)


@dataclass
class Samples:
    """Stacked samples: arrays with one row per (SKU, origin); ``text`` rows via ``sku_row`` into the panel.

    ``stage_truth``: the stage labels are a simulator's truth (False: the labelling rule's).
    """

    history: np.ndarray
    age: np.ndarray
    weekday: np.ndarray
    sku_row: np.ndarray
    origin: np.ndarray
    targets: np.ndarray
    stage: np.ndarray
    text: np.ndarray
    has_text: np.ndarray
    stage_truth: bool = True

    def __len__(self) -> int:
        return len(self.targets)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a training run (stored in the checkpoint's metadata).

    ``weight_power``: a sample's loss weight is ``s ** weight_power`` (``s``
    its units scale), between scale-free (0) and absolute units (1), which
    is what WAPE weighs. ``stage_weight``: weight of the stage cross-entropy
    against the pinball loss; ``rule_stage_weight``: its share for labels
    of the labelling rule (real data), which are a guess read off a noisy
    curve, not a truth: at full weight their cross-entropy dominates the
    validation loss and stops training before the forecasts have learnt.
    ``distill_weight``: with a teacher (:func:`train`'s ``teacher``), the
    weight of the distance to the teacher's quantiles against the pinball
    loss (both in units of ``s · h``).
    ``members``: networks trained from seeds ``seed, seed + 1, ...`` and
    averaged (:class:`~models.network.TrendcastEnsemble`); 1 is one network.
    """

    epochs: int = 30
    batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 1e-5
    patience: int = 4
    seed: int = 11
    weight_power: float = 0.5
    stage_weight: float = 0.5
    rule_stage_weight: float = 0.1
    members: int = 1
    distill_weight: float = 1.0
    model: dict = field(default_factory=lambda: {"history_days": 56, "hidden": 128, "conv_channels": 16,
                                                 "text_dim": 16, "recent_funnel": True, "channels": 6})


def tensors(s: Samples, idx: np.ndarray | slice = slice(None), device: str = "cpu") -> tuple[torch.Tensor, ...]:
    """The network's inputs, targets and stage labels of samples ``idx``, on ``device``."""
    rows = s.sku_row[idx]
    return tuple(torch.from_numpy(a).to(device) for a in (
        s.history[idx], s.age[idx], s.weekday[idx], s.text[rows], s.has_text[rows], s.targets[idx], s.stage[idx]))


def batch_loss(model: TrendcastNet, batch: tuple[torch.Tensor, ...], cfg: TrainConfig,
               stage_truth: bool = True, teacher: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted pinball loss (in units of ``s · h``) plus the stage cross-entropy on labelled rows.

    The cross-entropy weighs ``stage_weight``, times ``rule_stage_weight``
    unless the labels are a simulator's truth (``stage_truth``). With
    ``teacher`` quantiles ``(n, 3, 3)`` (units), their mean absolute
    distance to the model's, in units of ``s · h`` and weighted alike, is
    added ``distill_weight`` times: the teacher's quantiles are a
    denoised target, what one sale more or less does not move.
    """
    *inputs, target, stage = batch
    q, logits, scale = model(*inputs)
    weight = scale ** cfg.weight_power
    weight = weight / weight.mean()
    loss = pinball_loss(q, target, scale, weight)
    if teacher is not None:
        norm = scale[:, None, None] * model.horizons[None, :, None]
        loss = loss + cfg.distill_weight * ((q - teacher).abs() / norm).mean(dim=(1, 2)).mul(weight).mean()
    labelled = stage >= 0
    if labelled.any():
        share = cfg.stage_weight * (1.0 if stage_truth else cfg.rule_stage_weight)
        loss = loss + share * F.cross_entropy(logits[labelled], stage[labelled])
    return loss


def predict(model: TrendcastNet, s: Samples, batch: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """``(quantiles (n, 3, 3), stage probabilities (n, 4))`` of every sample."""
    qs, ps = [], []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(s), batch):
            *inputs, _, _ = tensors(s, slice(start, start + batch))
            q, logits, _ = model(*inputs)
            qs.append(q.numpy())
            ps.append(torch.softmax(logits, 1).numpy())
    return np.concatenate(qs), np.concatenate(ps)


def validation_loss(model: TrendcastNet, valid: list[Samples], cfg: TrainConfig, batch: int = 8192,
                    device: str = "cpu") -> float:
    """Mean :func:`batch_loss` over the validation sets (each set weighs by its number of batches)."""
    losses = []
    model.eval()
    with torch.inference_mode():
        for s in valid:
            for start in range(0, len(s), batch):
                losses.append(float(batch_loss(model, tensors(s, slice(start, start + batch), device), cfg,
                                               s.stage_truth)))
    return float(np.mean(losses))


def train(train_sets: list[Samples], valid_sets: list[Samples], cfg: TrainConfig,
          on_epoch=None, teacher: list[np.ndarray] | None = None,
          init: TrendcastNet | None = None, device: str = "cpu") -> tuple[TrendcastNet, dict]:
    """Train a :class:`TrendcastNet`; returns the weights of the best validation epoch and a history.

    ``on_epoch(epoch, train_loss, valid_loss, best)`` is called after each epoch.
    Stops after ``patience`` epochs without a better validation loss.
    ``teacher``: per training set, a trained model's quantiles ``(n, 3, 3)``
    of its samples (:func:`predict`) to distil (:func:`batch_loss`).
    ``init``: a trained network to start from (a copy is trained; its own
    shape, not ``cfg.model``). Without ``valid_sets`` the epoch of the
    lowest training loss is kept. ``device``: where the network trains
    (``"cuda"`` on a GPU); it comes back on the CPU.
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = (copy.deepcopy(init) if init is not None else TrendcastNet(**cfg.model)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # one shuffled stream over all training sets: (set, row) pairs
    owners = np.concatenate([np.full(len(s), i) for i, s in enumerate(train_sets)])
    rows = np.concatenate([np.arange(len(s)) for s in train_sets])
    best, best_state, stale, history = float("inf"), None, 0, []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        order = rng.permutation(len(rows))
        losses = []
        for start in range(0, len(order), cfg.batch_size):
            pick = order[start : start + cfg.batch_size]
            loss = 0.0
            for i in np.unique(owners[pick]):
                idx = np.sort(rows[pick][owners[pick] == i])
                t = None if teacher is None else torch.from_numpy(teacher[i][idx]).float().to(device)
                loss = loss + (batch_loss(model, tensors(train_sets[i], idx, device), cfg, train_sets[i].stage_truth, t)
                               * float(np.mean(owners[pick] == i)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        v = validation_loss(model, valid_sets, cfg, device=device) if valid_sets else float(np.mean(losses))
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "valid_loss": v})
        if v < best - 1e-5:
            best, best_state, stale = v, {k: t.detach().cpu().clone() for k, t in model.state_dict().items()}, 0
        else:
            stale += 1
        if on_epoch is not None:
            on_epoch(epoch, float(np.mean(losses)), v, best)
        if stale >= cfg.patience:
            break
    model = model.cpu()
    model.load_state_dict(best_state)
    return model.eval(), {"epochs": history, "best_valid_loss": best, "config": asdict(cfg)}


def train_members(train_sets: list[Samples], valid_sets: list[Samples], cfg: TrainConfig,
                  on_epoch=None, teacher: list[np.ndarray] | None = None
                  ) -> tuple[TrendcastNet | TrendcastEnsemble, dict, dict]:
    """:func:`train` ``cfg.members`` times (seeds ``cfg.seed + i``); ``(network, history, network config)``.

    One member is a plain :class:`TrendcastNet` (config ``cfg.model``);
    more are a :class:`TrendcastEnsemble` (config with ``members``), each
    member stopped early on its own. ``history["members"]`` holds each
    member's epochs; ``on_epoch(member, epoch, train_loss, valid_loss, best)``.
    """
    if cfg.members <= 1:
        model, history = train(train_sets, valid_sets, cfg, on_epoch=lambda *a: on_epoch and on_epoch(0, *a),
                               teacher=teacher)
        return model, history, dict(cfg.model)
    nets, runs = [], []
    for i in range(cfg.members):
        net, run = train(train_sets, valid_sets, replace(cfg, seed=cfg.seed + i),
                         on_epoch=lambda *a, i=i: on_epoch and on_epoch(i, *a), teacher=teacher)
        nets.append(net)
        runs.append(run["epochs"])
    config = {**cfg.model, "members": cfg.members}
    ensemble = TrendcastEnsemble(**config)
    for slot, net in zip(ensemble.nets, nets):
        slot.load_state_dict(net.state_dict())
    history = {"epochs": runs[0], "members": runs, "best_valid_loss": validation_loss(ensemble, valid_sets, cfg),
               "config": asdict(cfg)}
    return ensemble.eval(), history, config


def wape(y: np.ndarray, p50: np.ndarray) -> float:
    """``Σ|y − p50| / Σy`` over finite targets (NaN when nothing sold)."""
    ok = np.isfinite(y)
    total = float(y[ok].sum())
    return float(np.abs(y[ok] - p50[ok]).sum() / total) if total > 0 else float("nan")


def baseline_p50(s: Samples, horizon: int, kind: str) -> np.ndarray:
    """Point forecasts of units over ``horizon`` days: ``ma28`` (28-day mean) or ``ewma`` (models.baselines)."""
    units = s.history[:, UNITS]
    if kind == "ma28":
        return units[:, -28:].mean(axis=1) * horizon
    from models.baselines import EwmaForecaster
    from models.interface import FeatureBatch

    fb = FeatureBatch(s.history, s.age, s.weekday, 0)
    return EwmaForecaster().predict(fb).quantiles[:, HORIZONS.index(horizon), 1]


def macro_f1(truth: np.ndarray, pred: np.ndarray, n: int = len(STAGES)) -> float:
    """Mean F1 over the classes present in ``truth`` or ``pred``."""
    f1 = []
    for c in range(n):
        tp = np.sum((truth == c) & (pred == c))
        fp, fn = np.sum((truth != c) & (pred == c)), np.sum((truth == c) & (pred != c))
        if tp + fp + fn:
            f1.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1)) if f1 else float("nan")


def sold_in_period(s: Samples) -> np.ndarray:
    """``(n,)`` whether each sample's SKU sold in some 7-day target of ``s``: the samples WAPE is scored over."""
    sold = np.zeros(s.text.shape[0], dtype=bool)
    sold[s.sku_row[np.nan_to_num(s.targets[:, H7]) > 0]] = True
    return sold[s.sku_row]


def validation_metrics(model: TrendcastNet, s: Samples) -> dict:
    """WAPE at 7 days of the model's p50 and of the baselines over SKUs that sold in the period; pinball; stage F1."""
    q, probs = predict(model, s)
    keep = sold_in_period(s)
    y = s.targets[keep, H7]
    out = {"samples": int(keep.sum()), "skus_with_sales": int(np.unique(s.sku_row[keep]).size),
           "wape7_model": wape(y, q[keep, H7, 1]),
           "wape7_ewma": wape(y, baseline_p50(s, 7, "ewma")[keep]),
           "wape7_ma28": wape(y, baseline_p50(s, 7, "ma28")[keep])}
    ok = np.isfinite(y)
    out["coverage80_7"] = float(np.mean((y[ok] >= q[keep, H7, 0][ok]) & (y[ok] <= q[keep, H7, 2][ok])))
    labelled = s.stage >= 0
    out["stage_macro_f1"] = macro_f1(s.stage[labelled], probs[labelled].argmax(1)) if labelled.any() else None
    return out
