"""Continual learning: warm-start the serving network on the newest outcomes, promote it only if it is better.

Pure: samples in (what the worker published, :mod:`stream_app.data.stream_samples`),
a candidate network and a decision out. Champion/challenger:

* the newest ``holdout_days`` of forecast days (two weeks) are held back; the candidate
  trains on the days before them, the last ``recent_days`` in full and a
  ``replay_share`` of the older ones drawn at random (so one ramp does not
  make it forget the rest of the year), and only on outcomes that had
  closed when the first held-back forecast was made (no held-back sales
  leak into training through a longer horizon of an earlier day);
* both networks forecast the held-back days; the candidate is promoted only
  if its 7-day WAPE there is below the serving one's by ``margin`` (a share),
  its p10-p90 coverage is no further from 80% than the serving one's
  plus ``coverage_slack``, and it is no worse on the freshest sales known:
  the 1-day outcomes of the days after the held-back ones (:func:`newest`),
  where a regime change that began since shows first;
* once a retrained network serves, the shipped checkpoint is judged beside
  the candidate by the same margin and newest-days check (not by the
  coverage rule), and promoted back when it wins (a roll back): fine-tuned
  on one shop's weeks before a regime change, a network can do worse after
  it than the one the fleet started from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from models.interface import HORIZONS, QUANTILES
from models.network import TrendcastNet
from models.training import Samples, TrainConfig, predict, train, wape

H1, H7 = HORIZONS.index(1), HORIZONS.index(7)
NOMINAL = QUANTILES[2] - QUANTILES[0]


@dataclass(frozen=True)
class RetrainRules:
    """How a candidate is trained and judged (days are forecast days; ``lr`` is Adam's step).

    Two weeks held back and a 2 % margin: judged on one week with a 1 %
    margin, candidates won by noise and then published worse than the
    serving model (a validation simulator run, docs/MODEL.md "Continual learning").

    ``anchor_weight``: weight of the distance to the serving network's own
    quantiles (distillation from the champion): learn from the new outcomes
    without forgetting what the serving network knew (0: outcomes alone).
    """

    holdout_days: int = 14
    recent_days: int = 56
    replay_share: float = 0.5
    margin: float = 0.02
    coverage_slack: float = 0.02
    newest_slack: float = 0.0  # how much worse (a share) on the newest days' 1-day outcomes a candidate may be
    epochs: int = 4
    lr: float = 5e-4
    anchor_weight: float = 0.0
    batch_size: int = 2048
    seed: int = 11


@dataclass
class Decision:
    """A retrain's result: the candidate, the figures of both networks on the held-back days, and the verdict.

    ``figures``: ``{"serving": {...}, "candidate": {...}}``, each with
    ``wape_7d``, ``coverage_7d``, ``pinball_7d`` (units per sample) and
    ``samples``; ``trained_on``: samples; ``days``: first and last forecast
    day trained on, first and last held back.
    """

    candidate: TrendcastNet
    figures: dict
    promote: bool
    reason: str
    trained_on: int
    days: dict


def split(s: Samples, rules: RetrainRules) -> tuple[Samples, Samples]:
    """``(training samples, held-back samples)`` of ``s`` (see the module doc)."""
    judged = np.isfinite(s.targets[:, H7])
    if not judged.any():
        raise ValueError("no forecast has its 7-day outcome yet: retrain once the worker has published a week of outcomes")
    last = int(s.origin[judged].max())
    start = last - rules.holdout_days + 1
    hold = np.flatnonzero(judged & (s.origin >= start))
    before = np.flatnonzero(s.origin < start)
    recent = before[s.origin[before] >= start - rules.recent_days]
    older = before[s.origin[before] < start - rules.recent_days]
    rng = np.random.default_rng(rules.seed)
    k = min(len(older), int(round(rules.replay_share * len(recent))))
    rows = np.sort(np.concatenate([recent, rng.choice(older, size=k, replace=False)]))
    train_set = take(s, rows)
    # An outcome that closed after the first held-back forecast was made is the held-back days' sales.
    closes = train_set.origin[:, None] + np.asarray(HORIZONS)[None, :]
    train_set.targets[closes > start] = np.nan
    keep = np.isfinite(train_set.targets).any(axis=1)
    if not keep.any():
        raise ValueError(f"no outcome closed before the held-back days (from day {start}): "
                         "retrain once the topic holds more than the held-back days")
    return take(train_set, np.flatnonzero(keep)), take(s, hold)


def newest(s: Samples) -> Samples:
    """The forecasts made after the last one with a 7-day outcome that have their 1-day outcome.

    The freshest sales a cycle knows, after the held-back days: a regime
    change that began at their end (a funnel shift) shows here first.
    """
    judged = np.isfinite(s.targets[:, H7])
    last = int(s.origin[judged].max()) if judged.any() else int(s.origin.min()) - 1
    return take(s, np.flatnonzero((s.origin > last) & np.isfinite(s.targets[:, H1])))


def take(s: Samples, rows: np.ndarray) -> Samples:
    """The samples ``rows`` of ``s`` (copies; the text table is shared)."""
    return replace(s, history=s.history[rows], age=s.age[rows], weekday=s.weekday[rows], sku_row=s.sku_row[rows],
                   origin=s.origin[rows], targets=s.targets[rows].copy(), stage=s.stage[rows])


def scores(model: TrendcastNet, s: Samples) -> dict:
    """7-day WAPE, p10-p90 coverage and mean pinball loss (units) of ``model`` on ``s``."""
    q, _ = predict(model, s)
    y, qq = s.targets[:, H7], q[:, H7]
    ok = np.isfinite(y)
    y, qq = y[ok], qq[ok]
    levels = np.asarray(QUANTILES)
    diff = y[:, None] - qq
    pinball = float(np.maximum(levels * diff, (levels - 1) * diff).sum(axis=1).mean()) if len(y) else float("nan")
    return {"wape_7d": wape(y, qq[:, 1]), "coverage_7d": float(np.mean((y >= qq[:, 0]) & (y <= qq[:, 2]))),
            "pinball_7d": pinball, "samples": int(len(y))}


def retrain(serving: TrendcastNet, s: Samples, rules: RetrainRules = RetrainRules(), device: str = "cpu",
            shipped: TrendcastNet | None = None) -> Decision:
    """Warm-start a copy of ``serving`` on ``s`` and judge it against ``serving`` on the held-back days.

    ``device``: where the candidate trains (``"cuda"`` on a GPU machine); both are judged on the CPU.
    ``shipped``: the checkpoint the fleet started from, a standing challenger
    once a retrained network serves: when it beats the serving network by
    the margin and on the newest days, and the candidate too, it is what gets
    promoted (a roll back). A network fine-tuned on weeks before a regime change can do worse
    after it than the one trained on many shops and runs.
    """
    if not isinstance(serving, TrendcastNet):
        raise ValueError(f"retraining warm-starts one network; the serving model is a {type(serving).__name__}: "
                         "serve a single network (the shipped default is one)")
    train_set, hold = split(s, rules)
    cfg = TrainConfig(epochs=rules.epochs, lr=rules.lr, batch_size=rules.batch_size, seed=rules.seed,
                      patience=rules.epochs, distill_weight=rules.anchor_weight)
    teacher = [predict(serving, train_set)[0]] if rules.anchor_weight > 0 else None
    candidate, _ = train([train_set], [], cfg, init=serving, teacher=teacher, device=device)
    models = {"serving": serving, "candidate": candidate}
    if shipped is not None and not same_weights(shipped, serving):
        models["shipped"] = shipped
    figures = {name: scores(model, hold) for name, model in models.items()}
    fresh = newest(s)
    if len(fresh):
        for name, model in models.items():
            figures[name]["wape_1d_newest"] = wape(fresh.targets[:, H1], predict(model, fresh)[0][:, H1, 1])
    promote, reason = verdict(figures["serving"], figures["candidate"], rules)
    days = {"trained": [int(train_set.origin.min()), int(train_set.origin.max())],
            "held_back": [int(hold.origin.min()), int(hold.origin.max())]}
    if "shipped" in figures:
        # Its coverage is not held against it: that rule stops a new network winning WAPE with a dishonest
        # interval; the shipped one's was validated when it was trained, and the calibration corrects the
        # published interval in service (on simulator seed 34, held to it, no roll back happened: +1.0 % over
        # the last 8 weeks, worst week +6.7 %; without it one roll back, -2.1 % and +0.3 %).
        back, why = verdict(figures["serving"], figures["shipped"], rules, coverage=False)
        if back and (not promote or figures["shipped"]["wape_7d"] <= figures["candidate"]["wape_7d"]):
            return Decision(shipped, figures, True, f"rolled back to the shipped checkpoint: {why}", 0, days)
    return Decision(candidate, figures, promote, reason, len(train_set), days)


def verdict(a: dict, b: dict, rules: RetrainRules, coverage: bool = True) -> tuple[bool, str]:
    """Whether network ``b`` may replace ``a`` by their figures on the held-back days (:func:`scores`), and why.

    ``coverage``: whether ``b``'s p10-p90 coverage must be as near 80 % as ``a``'s (plus the slack).
    """
    better = b["wape_7d"] <= a["wape_7d"] * (1.0 - rules.margin)
    honest = not coverage or abs(b["coverage_7d"] - NOMINAL) <= abs(a["coverage_7d"] - NOMINAL) + rules.coverage_slack
    a1, b1 = a.get("wape_1d_newest"), b.get("wape_1d_newest")
    steady = a1 is None or not np.isfinite(a1) or b1 <= a1 * (1.0 + rules.newest_slack)
    if better and honest and steady:
        return True, f"7-day WAPE {b['wape_7d']:.4f} against {a['wape_7d']:.4f} (margin {rules.margin:.0%})"
    if not better:
        return False, f"7-day WAPE {b['wape_7d']:.4f} is not {rules.margin:.0%} below the serving {a['wape_7d']:.4f}"
    if not honest:
        return False, f"coverage {b['coverage_7d']:.3f} is further from {NOMINAL:.0%} than the serving {a['coverage_7d']:.3f}"
    return False, (f"7-day WAPE {b['wape_7d']:.4f} against {a['wape_7d']:.4f}, but on the newest days' 1-day outcomes "
                   f"{b1:.4f} against {a1:.4f}")


def same_weights(a: TrendcastNet, b: TrendcastNet) -> bool:
    """Whether two networks hold the same parameters (the serving one may be the shipped one itself)."""
    if a is b:
        return True
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
