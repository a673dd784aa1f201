"""The LightGBM anchor: a global quantile model on lag features, retrained at every origin (the M5 recipe).

At an origin day ``o`` the anchor is fitted on the panel as known at the
end of ``o`` (:func:`models.panel.panel_until`), one LightGBM model per
horizon ``h`` and quantile, each predicting the total units of the next
``h`` days directly. Its training pairs are (SKU, day ``d``) with
``d + h ≤ o`` — the target window ends on or before the origin — on days
``o − h, o − h − every, ...`` back to ``weeks_back`` weeks before the
origin, each day with its full 56-day history inside the data. A pair
counts once its SKU has had any event on or before ``d`` (the worker knows
it). SKU-days without a sale in their 56 days are kept with probability
``inactive_keep`` only: they are most of the rows and nearly all zeros,
and they are a group the features single out (``mean_56 = 0``), so the
sample still tells the model their quantiles.

Hyperparameters are fixed here, chosen once before any evaluation and
never tuned on a test period. Training is deterministic (fixed seed,
``deterministic=True``, a fixed thread count).

``lightgbm`` is an optional dependency (``pip install 'trendcast[eval]'``):
it is imported only when the anchor is fitted, never by the worker.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from models.interface import HORIZONS, QUANTILES, STAGES, FeatureBatch, ForecastBatch
from models.panel import Panel, features_at, panel_until, targets_at
from stream_app.evaluation.gbm_features import NAMES, WINDOW, feature_table

INSTALL_HINT = "pip install 'trendcast[eval]' (or lightgbm)"


def lightgbm_missing() -> str | None:
    """Why the LightGBM anchor cannot run here (one line), or None when ``lightgbm`` is installed."""
    if importlib.util.find_spec("lightgbm") is None:
        return f"the lightgbm package is not installed: {INSTALL_HINT}"
    return None


def known_since(panel: Panel) -> np.ndarray:
    """``(n,)`` the first day each SKU has any event in ``panel`` (days since 1970-01-01); a huge number for none."""
    any_event = (panel.values != 0).any(axis=1)
    return np.where(any_event.any(axis=1), panel.first_day + any_event.argmax(axis=1), np.iinfo(np.int64).max)


class LightGbmQuantiles:
    """p10/p50/p90 of units over 1, 7 and 14 days from LightGBM quantile models, refitted at each origin.

    Parameters
    ----------
    trees, learning_rate, num_leaves, min_data_in_leaf
        LightGBM's ``num_boost_round``, ``learning_rate``, ``num_leaves``, ``min_data_in_leaf``.
    every
        Days between training days (3: every weekday in turn).
    weeks_back
        How far back training days go from the origin, weeks.
    inactive_keep
        Share of the SKU-days without a sale in their 56 days that are trained on.
    seed, threads
        LightGBM's ``seed`` and ``num_threads`` (also the inactive subsample's seed).
    """

    name = "lightgbm"
    version = "1"
    predicts_stages = False

    def __init__(self, *, trees: int = 300, learning_rate: float = 0.05, num_leaves: int = 31,
                 min_data_in_leaf: int = 50, every: int = 3, weeks_back: int = 26, inactive_keep: float = 0.1,
                 seed: int = 7, threads: int = 2) -> None:
        self.trees, self.learning_rate, self.num_leaves = trees, learning_rate, num_leaves
        self.min_data_in_leaf, self.every, self.weeks_back = min_data_in_leaf, every, weeks_back
        self.inactive_keep, self.seed, self.threads = inactive_keep, seed, threads
        self.origin_day: int | None = None
        self.training_pairs: dict[int, int] = {}
        self._boosters: dict[int, list] = {}

    def params(self, alpha: float) -> dict:
        """The LightGBM parameters of the model of quantile ``alpha``."""
        return {"objective": "quantile", "alpha": alpha, "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "min_data_in_leaf": self.min_data_in_leaf, "seed": self.seed,
                "deterministic": True, "force_row_wise": True, "num_threads": self.threads, "verbose": -1}

    def training_set(self, panel: Panel, origin_day: int, horizon: int,
                     cache: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Features ``(m, len(NAMES))`` and targets ``(m,)`` units over ``horizon`` days of the training pairs.

        ``panel`` must end at ``origin_day`` at the latest; ``cache`` holds
        the feature table of each day already built (horizons share days).
        """
        first = max(origin_day - 7 * self.weeks_back, panel.first_day + WINDOW - 1)
        days = np.arange(origin_day - horizon, first - 1, -self.every)
        known = known_since(panel)
        xs, ys = [], []
        for d in days.tolist():
            if d not in cache:
                cache[d] = feature_table(features_at(panel, d, WINDOW))
            table = cache[d]
            rows = np.flatnonzero(known <= d)
            # Drawn over the known SKUs in panel order: a SKU that appears later changes no draw.
            draw = np.random.default_rng([self.seed, d]).random(len(rows))
            active = table[rows, NAMES.index("mean_56")] > 0
            rows = rows[active | (draw < self.inactive_keep)]
            xs.append(table[rows])
            ys.append(targets_at(panel, d, rows=rows)[:, HORIZONS.index(horizon)])
        if not xs:
            return np.zeros((0, len(NAMES)), np.float32), np.zeros(0, np.float32)
        return np.concatenate(xs), np.concatenate(ys)

    def fit(self, panel: Panel, origin_day: int) -> None:
        """Train the models of every horizon and quantile on the pairs whose targets end by ``origin_day``."""
        import lightgbm

        # The backtest passes the truncated panel already; truncating again keeps the anchor safe on its own.
        panel = panel_until(panel, origin_day)
        cache: dict[int, np.ndarray] = {}
        self._boosters, self.training_pairs = {}, {}
        for h in HORIZONS:
            x, y = self.training_set(panel, origin_day, h, cache)
            self.training_pairs[h] = len(y)
            if len(y) < 2 * self.min_data_in_leaf:
                continue  # too little past: predict() answers NaN and the backtest's fallback steps in
            data = lightgbm.Dataset(x, y, feature_name=list(NAMES), free_raw_data=False,
                                    params={"verbose": -1, "min_data_in_leaf": self.min_data_in_leaf})
            self._boosters[h] = [lightgbm.train(self.params(a), data, num_boost_round=self.trees)
                                 for a in QUANTILES]
        self.origin_day = origin_day

    def predict(self, features: FeatureBatch) -> ForecastBatch:
        """p10 ≤ p50 ≤ p90 units over :data:`HORIZONS`, at least 0; NaN for a horizon without a model."""
        if self.origin_day is None:
            raise RuntimeError("the LightGBM anchor predicts at the origin it was fitted at: call fit(panel, "
                               "origin_day) first")
        if features.as_of_day != self.origin_day:
            raise ValueError(f"fitted at day {self.origin_day}, asked for day {features.as_of_day}")
        x = feature_table(features)
        q = np.full((len(x), len(HORIZONS), len(QUANTILES)), np.nan)
        for j, h in enumerate(HORIZONS):
            if h in self._boosters:
                q[:, j] = np.stack([b.predict(x, num_threads=self.threads) for b in self._boosters[h]], axis=1)
        # Separate models per quantile can cross; sorting restores the order (NaN stays NaN).
        q = np.clip(np.sort(q, axis=-1), 0.0, None)
        stages = np.full((len(x), len(STAGES)), 1.0 / len(STAGES), dtype=np.float32)
        return ForecastBatch(quantiles=q.astype(np.float32), stage_probs=stages)
