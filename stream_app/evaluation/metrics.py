"""From a :class:`~stream_app.evaluation.backtest.Backtest` to the numbers of the report (a plain dict)."""

from __future__ import annotations

import numpy as np

from models.interface import HORIZONS, STAGES
from stream_app.evaluation.backtest import Backtest
from stream_app.evaluation.scores import coverage, macro_f1, mase, pinball, relative_width, wape

KEY_HORIZON = 7  # the target: WAPE over the next 7 days
SKU_AGES = ("established", "new", "not sold yet")
NEW_DAYS = 28  # a SKU first sold in the 28 days up to the origin is new there


def sku_ages(first_sale_day: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """``(O, R)`` index into :data:`SKU_AGES` of each SKU at each origin day.

    ``first_sale_day`` ``(R,)`` days since 1970-01-01, -1 for never. New:
    first sale on one of the :data:`NEW_DAYS` days ending at the origin;
    established: earlier; not sold yet: none on or before the origin. The
    first sale is the first in the data, so a SKU back after a long pause
    before the data began counts as new.
    """
    first = np.asarray(first_sale_day, dtype=np.int64)[None, :]
    o = np.asarray(origins, dtype=np.int64)[:, None]
    sold = (first >= 0) & (first <= o)
    return np.where(~sold, 2, np.where(first > o - NEW_DAYS, 1, 0))


def horizon_scores(bt: Backtest, name: str, mask: np.ndarray | None = None) -> dict[str, dict]:
    """Per horizon: WAPE, MASE, pinball (mean units and Σρ/Σy), p10-p90 coverage and width, over (SKU, origin) pairs.

    ``mask`` ``(O, R)``: the pairs to score, all by default. Width is
    ``Σ(p90 − p10) / Σy`` (:func:`~stream_app.evaluation.scores.relative_width`).
    """
    out = {}
    for j, h in enumerate(HORIZONS):
        y = bt.targets[:, :, j].ravel()
        q = bt.quantiles[name][:, :, j, :].reshape(-1, 3)
        scale = bt.scale.ravel()
        ok = ~np.isnan(y) if mask is None else ~np.isnan(y) & mask.ravel()
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
            "width_p10_p90": relative_width(y, q[:, 0], q[:, 2]),
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


def summarise(bt: Backtest, *, model: str | None, stages: np.ndarray | None, ages: np.ndarray | None = None,
              ours: tuple[str, ...] = ()) -> dict:
    """Every forecaster's scores, the best baseline at 7 days, and the model's relative improvement on it.

    ``model``: the key of the model in ``bt`` (None when only baselines ran);
    ``ours``: other keys that are trendcast's own (the published stream),
    not baselines: each gets its improvement on the best baseline too.
    ``ages`` ``(O, R)`` from :func:`sku_ages`: also score each SKU age apart.
    Improvement = ``(WAPE_best − WAPE_model) / WAPE_best`` (0.10 = 10 % lower).
    """
    forecasters = {}
    for name in bt.quantiles:
        entry: dict = {"horizons": horizon_scores(bt, name), "predict_seconds": round(bt.seconds[name], 3)}
        if name in bt.fit_seconds:
            entry["fit_seconds"] = round(bt.fit_seconds[name], 3)
        if stages is not None:
            entry["wape_7d_by_stage"] = wape_by_stage(bt, name, stages)
            entry["stages"] = stage_scores(bt, name, stages)
        if ages is not None:
            entry["by_sku_age"] = {a: horizon_scores(bt, name, ages == i) for i, a in enumerate(SKU_AGES)}
        forecasters[name] = entry
    key = str(KEY_HORIZON)
    baselines = {n: e["horizons"][key]["wape"] for n, e in forecasters.items() if n != model and n not in ours}
    best = min(baselines, key=lambda n: baselines[n]) if baselines else None
    result = {"forecasters": forecasters, "best_baseline_7d": best, "model": model,
              "model_wape_7d_improvement": None, "wape_7d_improvement": {}}
    if best is not None:
        for name in (model, *ours):
            if name in forecasters:
                result["wape_7d_improvement"][name] = \
                    (baselines[best] - forecasters[name]["horizons"][key]["wape"]) / baselines[best]
        if model is not None:
            result["model_wape_7d_improvement"] = result["wape_7d_improvement"][model]
    return result
