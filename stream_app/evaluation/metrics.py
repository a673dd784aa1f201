"""From a :class:`~stream_app.evaluation.backtest.Backtest` to the numbers of the report (a plain dict)."""

from __future__ import annotations

import numpy as np

from models.interface import HORIZONS, STAGES
from stream_app.evaluation.backtest import Backtest
from stream_app.evaluation.scores import coverage, macro_f1, mase, pinball, wape

KEY_HORIZON = 7  # the target: WAPE over the next 7 days


def horizon_scores(bt: Backtest, name: str) -> dict[str, dict]:
    """Per horizon: WAPE, MASE, pinball (mean units and Σρ/Σy), p10-p90 coverage, over all (SKU, origin) pairs."""
    out = {}
    for j, h in enumerate(HORIZONS):
        y = bt.targets[:, :, j].ravel()
        q = bt.quantiles[name][:, :, j, :].reshape(-1, 3)
        scale = bt.scale.ravel()
        ok = ~np.isnan(y)
        y, q, scale = y[ok], q[ok], scale[ok]
        loss = pinball(y, q)
        m, unscaled = mase(y, q[:, 1], scale, h)
        out[str(h)] = {
            "wape": wape(y, q[:, 1]),
            "mase": m,
            "mase_pairs_left_out": unscaled,
            "pinball": float(loss.mean()),
            "pinball_scaled": float(loss.mean(axis=1).sum() / y.sum()) if y.sum() > 0 else float("nan"),
            "coverage_p10_p90": coverage(y, q[:, 0], q[:, 2]),
            "pairs": int(ok.sum()),
        }
    return out


def wape_by_stage(bt: Backtest, name: str, stages: np.ndarray) -> dict[str, float | None]:
    """WAPE over the next :data:`KEY_HORIZON` days per lifecycle stage at the origin (``stages`` ``(O, R)``, -1 unknown)."""
    j = HORIZONS.index(KEY_HORIZON)
    y, p50 = bt.targets[:, :, j], bt.quantiles[name][:, :, j, 1]
    out = {}
    for s, label in [*enumerate(STAGES), (-1, "unlabelled")]:
        mask = (stages == s) & ~np.isnan(y)
        if mask.any():
            out[label] = wape(y[mask], p50[mask])
    return out


def stage_scores(bt: Backtest, name: str, stages: np.ndarray) -> dict | None:
    """Macro-F1 of ``argmax(stage_probs)`` against ``stages`` over labelled pairs; None for stage-less forecasters."""
    if not bt.predicts_stages[name]:
        return None
    mask = stages >= 0
    predicted = bt.stage_probs[name].argmax(axis=-1)
    f1, per = macro_f1(stages[mask], predicted[mask], len(STAGES))
    return {"macro_f1": f1, "f1_per_stage": dict(zip(STAGES, per)), "pairs": int(mask.sum())}


def summarise(bt: Backtest, *, model: str | None, stages: np.ndarray | None) -> dict:
    """Every forecaster's scores, the best baseline at 7 days, and the model's relative improvement on it.

    ``model``: the key of the model in ``bt`` (None when only baselines ran).
    Improvement = ``(WAPE_best − WAPE_model) / WAPE_best`` (0.10 = 10 % lower).
    """
    forecasters = {}
    for name in bt.quantiles:
        entry: dict = {"horizons": horizon_scores(bt, name), "predict_seconds": round(bt.seconds[name], 3)}
        if stages is not None:
            entry["wape_7d_by_stage"] = wape_by_stage(bt, name, stages)
            entry["stages"] = stage_scores(bt, name, stages)
        forecasters[name] = entry
    key = str(KEY_HORIZON)
    baselines = {n: e["horizons"][key]["wape"] for n, e in forecasters.items() if n != model}
    best = min(baselines, key=lambda n: baselines[n]) if baselines else None
    result = {"forecasters": forecasters, "best_baseline_7d": best, "model": model,
              "model_wape_7d_improvement": None}
    if model is not None and best is not None:
        result["model_wape_7d_improvement"] = (baselines[best] - forecasters[model]["horizons"][key]["wape"]) \
            / baselines[best]
    return result
