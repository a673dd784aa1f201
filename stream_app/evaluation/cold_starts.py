"""Cold starts scored: each launch forecast from its text alone, the day before its first sale.

For every SKU whose first sale falls in the scored period (and is a launch:
not in the data's first :data:`LAUNCHED_AFTER` days), the forecast of its
first 1, 7 and 14 days is made at the end of the day before, from the
launches whose first 14 days had closed by then
(:class:`models.launch_prior.LaunchReference`), three ways:

* ``no_text``: the quantiles of all those launches;
* ``frozen``: of the launches nearest by the pretrained embedding;
* ``fine_tuned``: nearest by the embedding of an encoder fine-tuned on the
  launches closed before the period began (:mod:`models.text_tuning`); no
  launch of the period is trained on.

Pure: embeddings and daily units in, forecasts and a dict of scores out (the
encoders are the edge's, :mod:`stream_app.cli.coldstartcli`).
"""

from __future__ import annotations

import numpy as np

from models.interface import HORIZONS
from models.launch_prior import LAUNCH_K, LAUNCH_PRIOR, LAUNCHED_AFTER, LaunchReference, launch_rows, launch_totals
from stream_app.evaluation.scores import coverage, pinball, relative_width, wape

WAYS = ("no_text", "frozen", "fine_tuned")


def cold_start_forecasts(units: np.ndarray, first_index: np.ndarray, has_text: np.ndarray,
                         texts: dict[str, np.ndarray], lo: int, hi: int, k: int = LAUNCH_K,
                         prior: float = LAUNCH_PRIOR) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """``(rows, quantiles by way, targets)`` for the launches first sold in columns ``lo..hi``.

    ``units`` ``(n, days)``; ``first_index`` ``(n,)`` column of each first
    sale (-1 none); ``texts``: way -> ``(n, 384)`` embeddings (``no_text``
    needs none). ``quantiles[way]`` ``(m, 3, 3)`` units over the first 1, 7,
    14 days; ``targets`` ``(m, 3)`` what sold; rows whose 14 days run past
    the data are left out.
    """
    totals = launch_totals(units, first_index)
    rows = np.flatnonzero((first_index >= max(lo, LAUNCHED_AFTER)) & (first_index <= hi) & has_text
                          & np.isfinite(totals).all(axis=1))
    out = {way: np.zeros((len(rows), len(HORIZONS), 3)) for way in WAYS if way == "no_text" or way in texts}
    for day in np.unique(first_index[rows]):
        at = np.flatnonzero(first_index[rows] == day)
        known, known_totals = launch_rows(units, first_index, has_text, int(day) - 1, LAUNCHED_AFTER)
        for way in out:
            if way == "no_text":  # the quantiles of all known launches: no text read
                ref = LaunchReference(np.zeros((len(known), 0), dtype=np.float32), known_totals)
                out[way][at] = ref.quantiles(None, k, prior)
            else:
                ref = LaunchReference(np.asarray(texts[way][known], dtype=np.float32), known_totals)
                out[way][at] = ref.quantiles(texts[way][rows[at]], k, prior)
    return rows, out, totals[rows]


def scores(quantiles: np.ndarray, targets: np.ndarray) -> dict[str, dict]:
    """Per horizon: WAPE, pinball (Σρ/Σy), p10-p90 coverage and width Σ(p90−p10)/Σy, launches scored."""
    out = {}
    for j, h in enumerate(HORIZONS):
        y, q = targets[:, j], quantiles[:, j]
        out[str(h)] = {
            "wape": wape(y, q[:, 1]),
            "pinball_scaled": float(pinball(y, q).mean(axis=1).sum() / y.sum()) if y.sum() > 0 else float("nan"),
            "coverage_p10_p90": coverage(y, q[:, 0], q[:, 2]),
            "width_p10_p90": relative_width(y, q[:, 0], q[:, 2]),
            "launches": int(len(y)),
        }
    return out
