"""What a stage alert's ``confidence`` means: the share of such alerts that were right, fitted on validation data.

The tracker's raw confidence of a stage change is the lowest smoothed
probability the new stage had over the days that confirmed it. That number
is a belief of the stage head, not a frequency: on the simulator's
validation runs a change announced with 0.9 was right far less often than
nine times in ten. A restocking bot thresholds on ``confidence``, so it
must read as a probability of being right. The map is an isotonic
(non-decreasing) regression of "the new stage was the true one on the
alert's day" on the raw confidence, stored as knots in the checkpoint's
metadata (``stage_confidence``) and applied by linear interpolation.

Pure numpy: arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

META_KEY = "stage_confidence"
EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # reliability bins of a confidence


@dataclass(frozen=True)
class ConfidenceMap:
    """Raw tracker confidence → probability that the alert's new stage is right.

    ``x``: increasing raw confidences (knots), ``y``: non-decreasing
    probabilities at them; outside the knots the end values hold.
    ``fitted_on``: what the map was fitted on (a line); ``pairs``: alerts used.
    """

    x: tuple[float, ...]
    y: tuple[float, ...]
    fitted_on: str = ""
    pairs: int = 0

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated confidences of ``raw`` ``(n,)`` (float32, in [0, 1])."""
        return np.clip(np.interp(np.asarray(raw, dtype=np.float64), self.x, self.y), 0.0, 1.0).astype(np.float32)

    def to_meta(self) -> dict:
        """The map as checkpoint metadata (plain JSON)."""
        return {"x": [round(v, 6) for v in self.x], "y": [round(v, 6) for v in self.y],
                "fitted_on": self.fitted_on, "pairs": self.pairs}

    @classmethod
    def from_meta(cls, meta: dict | None) -> "ConfidenceMap | None":
        """The map stored in a checkpoint's ``meta`` (None when it has none or it is malformed)."""
        entry = (meta or {}).get(META_KEY)
        if not isinstance(entry, dict):
            return None
        try:
            x = tuple(float(v) for v in entry["x"])
            y = tuple(float(v) for v in entry["y"])
        except (KeyError, TypeError, ValueError):
            return None
        ok = (len(x) == len(y) >= 1 and all(np.isfinite(x)) and all(np.isfinite(y))
              and all(b > a for a, b in zip(x, x[1:])) and all(b >= a for a, b in zip(y, y[1:]))
              and all(0.0 <= v <= 1.0 for v in y))
        return cls(x, y, str(entry.get("fitted_on", "")), int(entry.get("pairs", 0))) if ok else None


def fit(raw: np.ndarray, correct: np.ndarray, fitted_on: str = "", min_block: int = 20) -> ConfidenceMap:
    """Isotonic regression of ``correct`` (``(n,)`` bool) on ``raw`` (``(n,)`` confidences): the map's knots.

    Pool-adjacent-violators over the alerts sorted by raw confidence, with
    blocks of at least ``min_block`` alerts so one lucky alert does not make
    a knot; each block's knot sits at its mean raw confidence.
    """
    raw = np.asarray(raw, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    if raw.shape != correct.shape or raw.ndim != 1 or len(raw) == 0:
        raise ValueError("raw and correct must be equal-length, non-empty 1-d arrays")
    order = np.argsort(raw, kind="stable")
    raw, correct = raw[order], correct[order]
    # Start from blocks of min_block alerts (the last one takes the remainder), then pool violators.
    bounds = list(range(0, len(raw), min_block))
    blocks = [[correct[a:b].sum(), float(b - a), raw[a:b].sum()]
              for a, b in zip(bounds, [*bounds[1:], len(raw)])]
    if len(blocks) > 1 and blocks[-1][1] < min_block:
        last = blocks.pop()
        blocks[-1] = [u + v for u, v in zip(blocks[-1], last)]
    pooled: list[list[float]] = []
    for blk in blocks:
        pooled.append(blk)
        while len(pooled) > 1 and pooled[-2][0] / pooled[-2][1] >= pooled[-1][0] / pooled[-1][1]:
            last = pooled.pop()
            pooled[-1] = [u + v for u, v in zip(pooled[-1], last)]
    xs = [s / n for _, n, s in pooled]
    ys = [k / n for k, n, _ in pooled]
    # Blocks with the same mean raw confidence: keep the last (highest) value so x stays increasing.
    x, y = [], []
    for a, b in zip(xs, ys):
        if x and a <= x[-1]:
            y[-1] = max(y[-1], b)
            continue
        x.append(a)
        y.append(b)
    return ConfidenceMap(tuple(x), tuple(y), fitted_on, int(len(raw)))


def reliability(confidence: np.ndarray, correct: np.ndarray, edges=EDGES) -> dict:
    """Per confidence bin: alerts, mean confidence, share right; and the expected calibration error.

    ECE = Σ_bins (alerts in bin / all alerts) × |share right − mean confidence|;
    0 means a confidence of c is right a share c of the time.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    bins, ece = [], 0.0
    for i, (lo, hi) in enumerate(zip(edges, edges[1:])):
        sel = (conf >= lo) & ((conf < hi) if i < len(edges) - 2 else (conf <= hi))
        n = int(sel.sum())
        mean, right = (float(conf[sel].mean()), float(ok[sel].mean())) if n else (None, None)
        if n:
            ece += n / len(conf) * abs(right - mean)
        bins.append({"from": lo, "to": hi, "alerts": n, "mean_confidence": mean, "share_right": right})
    return {"alerts": int(len(conf)), "share_right": float(ok.mean()) if len(conf) else None,
            "ece": ece if len(conf) else None, "bins": bins}
