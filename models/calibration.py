"""Online calibration of forecast quantiles: bias correction, adaptive conformal intervals, drift resets.

Learned from (forecast, actual) pairs as days close, per group (a product
category) with a global group behind it, and per horizon:

* **bias** — the median log error ``log1p(actual) - log1p(p50)`` of each
  day's outcomes (a median: for skewed, zero-heavy counts a well-placed p50
  has a nonzero *mean* log error, and correcting it away costs WAPE),
  smoothed over days with river's ``stats.EWMean``; quantiles
  are corrected multiplicatively on the ``1 + units`` scale
  (``expm1(log1p(q) + bias)``), which suits SKUs selling 0.1/day and
  1,000/day alike;
* **interval width** — conformalized quantile regression (Romano et al.,
  2019, the asymmetric form) in log1p space: an outcome's lower score is how
  far below the bias-corrected p10 it fell, its upper score how far above
  the p90 (< 0: inside), in log1p units; each end moves out (or in) by the
  quantile of its recent scores at ``1 - alpha/2``. One interval end per
  side: a slow seller's p10 of 0 stays at 0 while its p90 tightens. The
  level ``alpha`` is what Adaptive Conformal Inference (Gibbs & Candès, 2021) nudges
  after every day: ``alpha += step * (target_miss - observed_miss)``
  (kept as ``shift``, alpha's distance from the nominal ``1 - coverage``, so
  a new coverage target applies at once to a restored calibrator),
  where a miss is judged on the interval as published (its lower end
  clipped at 0 units: an outcome of 0 under a p10 of 0 is covered). The
  correction is additive in log1p units, so it is bounded by the errors
  themselves (a multiplier of half-widths, used before, blew a 1-day p90 up
  to 10^13 units where a half-width was near zero);
* **a guard: do no harm** — per group and horizon, river ``stats.EWMean``
  means of daily losses (units) judge each correction against the model
  on the day's outcomes: the bias by the absolute error of the p50 with and
  without it, the conformal interval (bias and widths) by the pinball loss
  of its p10 and p90 against the model's own p10 and p90 (kept around the
  p50 published). A correction applies only while it has done better. A
  model already calibrated for a group keeps its own quantiles there; after
  a level shift the correction wins within days and applies. The bias is
  the median's: while the conformal interval has not won, the interval
  ends stay the model's, not moved with the median (moved with it, they lost
  coverage on UCI's validation month: 0.82 of the model → 0.76 published
  at 7 days, 0.80 kept now, pinball unchanged). On that month the
  unguarded corrections made the published 7-day forecasts worse than the
  raw model (WAPE 0.657 → 0.769, pinball Σρ/Σy 0.241 → 0.298);
* **drift** — river's ``drift.PageHinkley`` on each group's daily mean log
  error in standard errors. The standard error is the larger of the
  within-day one (a category selling 5 SKU-days a day is noisier than one
  selling 5,000) and the day-to-day spread of those daily means: a day's
  SKUs share its shocks (a holiday, a shop closed on Saturdays), so their
  errors are not independent, and dividing by the within-day error alone
  made a shop's ordinary weeks cry drift (182 detections in the sales-level
  groups of UCI's December 2010 to June 2011, against 34 now). When it
  fires, the group's bias jumps to the latest day's error, its ACI level
  and score window restart, and the caller counts it.

Daily means rather than single outcomes feed the learners: a category sells
thousands of SKU-days a day, and per-outcome fading would forget within
minutes of one busy day what a quiet week taught.

Pure with respect to Kafka: arrays in, arrays out. The state is saved as
numbers, without the rules, by :mod:`models.calibration_codec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from river import stats

from models.interface import QUANTILES
from models.river_state import new_page_hinkley

if TYPE_CHECKING:
    from river import drift

GLOBAL = ""  # the group every outcome also feeds
SE_FLOOR = 0.02  # log1p units: a day of near-identical errors is not infinitely sure
SPREAD_FADING = 0.1  # weight of a day in the learned spreads of log errors
DAY_CLIP = 2.0  # standard errors: how far one day's mean log error may move the learned day-to-day spread


@dataclass(frozen=True)
class CalibrationRules:
    """Knobs of the calibration.

    ``coverage``: nominal coverage of the p10–p90 interval; ``bias_fading``:
    weight of the newest day in the bias (river EWMean fading factor);
    ``aci_step``: ACI step per day; ``score_days``: days of conformal scores
    kept, at most ``score_sample`` per day (an even subsample: the state
    stays small enough for one changelog message); ``min_days``: days of outcomes before a category's own
    calibrator is used instead of the global one; ``drift_threshold`` and
    ``drift_delta``: Page-Hinkley threshold and tolerance on the daily mean
    log error divided by its standard error (t units); ``drift_warmup_days``:
    days the detector learns the error level before (and after each drift)
    it may fire; ``guard_fading``: weight of the newest day in the losses of
    the raw and the corrected quantiles that decide whether a group's
    forecasts are corrected (river EWMean fading factor).
    """

    coverage: float = 0.8
    bias_fading: float = 0.1
    aci_step: float = 0.1
    score_days: int = 14
    score_sample: int = 200
    min_days: int = 3
    drift_threshold: float = 10.0
    drift_delta: float = 0.5
    drift_warmup_days: int = 7
    guard_fading: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.coverage < 1.0:
            raise ValueError("coverage must be in (0, 1)")
        if not 0.0 < self.bias_fading <= 1.0 or not 0.0 < self.aci_step < 1.0:
            raise ValueError("bias_fading must be in (0, 1] and aci_step in (0, 1)")
        if not 0.0 < self.guard_fading <= 1.0:
            raise ValueError("guard_fading must be in (0, 1]")
        if self.score_days < 1 or self.min_days < 1 or self.score_sample < 1:
            raise ValueError("score_days, score_sample and min_days must be >= 1")


@dataclass
class HorizonState:
    """One group's calibration for one horizon.

    ``shift``: ACI's learned distance of the miss level alpha from the
    nominal ``1 - coverage`` (0 at the start and after a drift); the
    guard's daily mean losses (units): ``median_raw`` and ``median_biased``,
    absolute errors of the model's p50 and of the bias-corrected one;
    ``ends_raw`` and ``ends_conformal``, pinball losses of the model's own
    p10 and p90 and of the conformal ones (the bias and the widths; both
    kept around the p50 published).
    """

    bias: stats.EWMean
    shift: float = 0.0
    scores: list[np.ndarray] = field(default_factory=list)  # one array per day, newest last
    days: int = 0
    median_raw: stats.EWMean = field(default_factory=lambda: stats.EWMean(CalibrationRules.guard_fading))
    median_biased: stats.EWMean = field(default_factory=lambda: stats.EWMean(CalibrationRules.guard_fading))
    ends_raw: stats.EWMean = field(default_factory=lambda: stats.EWMean(CalibrationRules.guard_fading))
    ends_conformal: stats.EWMean = field(default_factory=lambda: stats.EWMean(CalibrationRules.guard_fading))

    def applied_bias(self) -> float:
        """The bias the published quantiles get (log1p units): the learned one while it has beaten the model's p50."""
        return self.bias.get() if self.days and self.median_biased.get() < self.median_raw.get() else 0.0

    def widens(self) -> bool:
        """Whether the conformal interval ends have beaten the model's own so far (the guard)."""
        return self.days > 0 and self.ends_conformal.get() < self.ends_raw.get()

    def width(self, target_miss: float) -> tuple[float, float]:
        """How far the lower and the upper end move out (< 0: in), log1p units: ACI quantiles of recent scores.

        A day's scores are stored as one array, its lower scores then its upper ones.
        """
        if not self.scores:
            return 0.0, 0.0
        lower = np.concatenate([d[: len(d) // 2] for d in self.scores]).astype(np.float64)
        upper = np.concatenate([d[len(d) // 2:] for d in self.scores]).astype(np.float64)
        level = float(np.clip(1.0 - (target_miss + self.shift) / 2.0, 0.0, 1.0))
        return float(np.quantile(lower, level)), float(np.quantile(upper, level))


@dataclass
class GroupState:
    """A group's horizons, its drift detector and the spreads of its log errors (for standard errors)."""

    horizons: list[HorizonState]
    detector: drift.PageHinkley
    spread: float | None = None  # exponentially weighted variance of single log errors, log1p units²
    day_level: float | None = None  # exponentially weighted mean of the daily mean log errors, log1p units
    day_spread: float = 0.0  # exponentially weighted variance of the daily mean log errors, log1p units²


class Calibrator:
    """Calibrates the forecasts of one partition's SKUs (``n`` SKUs, ``H`` horizons, p10/p50/p90)."""

    def __init__(self, rules: CalibrationRules | None = None, horizons: int = 3) -> None:
        self.rules = rules or CalibrationRules()
        self.n_horizons = horizons
        self.groups: dict[str, GroupState] = {}

    @property
    def ready(self) -> bool:
        """Whether any outcome has been learned yet (before that, corrections would be guesses)."""
        g = self.groups.get(GLOBAL)
        return g is not None and any(h.days for h in g.horizons)

    def _group(self, name: str) -> GroupState:
        g = self.groups.get(name)
        if g is None:
            r = self.rules
            g = GroupState(
                [HorizonState(stats.EWMean(r.bias_fading), **{k: stats.EWMean(r.guard_fading) for k in GUARD_LOSSES})
                 for _ in range(self.n_horizons)],
                new_page_hinkley(min_instances=r.drift_warmup_days, delta=r.drift_delta,
                                 threshold=r.drift_threshold, mode="both"),
            )
            self.groups[name] = g
        return g

    def _state_for(self, group: str, h: int) -> HorizonState:
        g = self.groups.get(group)
        if g is not None and g.horizons[h].days >= self.rules.min_days:
            return g.horizons[h]
        return self._group(GLOBAL).horizons[h]

    def correct(self, quantiles: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Calibrated copy of ``quantiles`` ``(n, H, 3)`` (units), for SKUs of ``groups`` ``(n,)``."""
        q = np.log1p(np.maximum(np.asarray(quantiles, dtype=np.float64), 0.0))
        out = np.empty_like(q)
        groups = np.asarray(groups, dtype=object)
        for name in np.unique(groups):
            rows = groups == name
            for h in range(q.shape[1]):
                st = self._state_for(name, h)
                b = st.applied_bias()
                mid = q[rows, h, 1] + b
                if st.widens():
                    w_lo, w_hi = st.width(1.0 - self.rules.coverage)
                    lo, hi = q[rows, h, 0] + b - w_lo, q[rows, h, 2] + b + w_hi
                else:  # the model's own ends: a median's bias says nothing of where the tails lie
                    lo, hi = q[rows, h, 0], q[rows, h, 2]
                out[rows, h, 0] = np.minimum(lo, mid)
                out[rows, h, 1] = mid
                out[rows, h, 2] = np.maximum(hi, mid)
        return np.maximum(np.expm1(out), 0.0)

    def learn(self, horizon: int, quantiles: np.ndarray, actual: np.ndarray, groups: np.ndarray) -> list[str]:
        """Learn from one day's outcomes of ``horizon``: raw ``quantiles`` ``(m, 3)`` and ``actual`` units ``(m,)``.

        Returns the groups (categories) whose drift detector fired.
        """
        q = np.log1p(np.maximum(np.asarray(quantiles, dtype=np.float64), 0.0))
        y = np.log1p(np.maximum(np.asarray(actual, dtype=np.float64), 0.0))
        groups = np.asarray(groups, dtype=object)
        drifted = []
        for name in [GLOBAL, *np.unique(groups)]:
            rows = slice(None) if name == GLOBAL else groups == name
            if self._learn_group(name, horizon, q[rows], y[rows]) and name != GLOBAL:
                drifted.append(name)
        return drifted

    def _learn_group(self, name: str, h: int, q: np.ndarray, y: np.ndarray) -> bool:
        if len(y) == 0:
            return False
        r = self.rules
        g = self._group(name)
        st = g.horizons[h]
        # The guard judges each correction on these outcomes as it stands now: the bias on the p50, the
        # conformal widths on the interval ends around the p50 published (with the bias when it applies).
        # The scores, too, are measured around the published p50, so the widths fit what is published.
        units = np.expm1(y)
        st.median_raw.update(_pinball(units, np.expm1(q[:, 1:2]), MEDIAN))
        if st.days:
            st.median_biased.update(_pinball(units, np.expm1(q[:, 1:2] + st.bias.get()), MEDIAN))
        b = st.applied_bias()
        score = _scores(q, y, b)
        w_lo, w_hi = st.width(1.0 - r.coverage)
        lo, mid, hi = q[:, 0] + b, q[:, 1] + b, q[:, 2] + b
        plain = np.stack([np.minimum(q[:, 0], mid), np.maximum(q[:, 2], mid)], axis=1)  # what is published without
        lo = np.maximum(np.minimum(lo - w_lo, mid), 0.0)  # as published: never below 0 units
        hi = np.maximum(hi + w_hi, mid)
        miss = float(np.mean((y < lo - 1e-9) | (y > hi + 1e-9)))
        st.shift += r.aci_step * ((1.0 - r.coverage) - miss)
        st.ends_raw.update(_pinball(units, np.expm1(plain), ENDS))
        st.ends_conformal.update(_pinball(units, np.expm1(np.stack([lo, hi], axis=1)), ENDS))
        st.scores.append(_sample(score, r.score_sample))
        del st.scores[: -r.score_days]
        resid = y - q[:, 1]
        error = float(np.median(resid))
        st.bias.update(error)
        st.days += 1
        fired = False
        if h == 0:  # the 1-day horizon reports first and most often: it watches for drift
            # The standard error uses the spreads learned over past days: one day's own
            # spread from a handful of SKUs is too noisy to divide by.
            var = float(np.var(resid)) if len(resid) > 1 else 0.0
            known = var if g.spread is None else g.spread
            g.spread = var if g.spread is None else (1 - SPREAD_FADING) * g.spread + SPREAD_FADING * var
            mean = float(np.mean(resid))
            se = max(np.sqrt(known / len(resid)), np.sqrt(g.day_spread), SE_FLOOR)
            if g.day_level is None:
                g.day_level = mean
            else:  # exponentially weighted variance (West's update); after the warm-up, of steps clipped at
                # DAY_CLIP standard errors: a level shift must not hide itself by inflating the spread it is
                # measured against
                step = mean - g.day_level
                if st.days > r.drift_warmup_days:
                    step = float(np.clip(step, -DAY_CLIP * se, DAY_CLIP * se))
                g.day_level += SPREAD_FADING * step
                g.day_spread = (1 - SPREAD_FADING) * (g.day_spread + SPREAD_FADING * step * step)
            g.detector.update(mean / se)
            if g.detector.drift_detected:
                fired = True
                # Old errors and scores describe a level that is gone: start over from
                # today's, which the 1-day horizon has for every horizon's level.
                for hs in g.horizons:
                    hs.bias = stats.EWMean(r.bias_fading)
                    hs.bias.update(error)
                    hs.shift = 0.0
                    hs.scores = []
                st.scores = [_sample(_scores(q, y, error), r.score_sample)]
                g.day_level = mean  # the day-to-day spread is kept: a new level is not a noisier one
        return fired


def _pinball(y: np.ndarray, q: np.ndarray, levels: np.ndarray) -> float:
    """Mean pinball loss (units) of quantiles ``q`` ``(m, k)`` at ``levels`` ``(k,)`` against ``y`` ``(m,)``, summed over the levels."""
    d = y[:, None] - q
    return float(np.maximum(levels * d, (levels - 1.0) * d).sum(axis=1).mean())


GUARD_LOSSES = ("median_raw", "median_biased", "ends_raw", "ends_conformal")  # HorizonState's guard fields
MEDIAN = np.array(QUANTILES[1:2])
ENDS = np.array(QUANTILES[::2])


def _scores(q: np.ndarray, y: np.ndarray, bias: float) -> np.ndarray:
    """Conformal scores of log1p outcomes ``y`` against log1p quantiles ``q`` shifted by ``bias``.

    How far below the p10 (lower score) and above the p90 (upper score) each
    outcome fell, in log1p units (< 0: inside): the interval whose ends moved
    out by those just covers it. One array: the lower scores, then the upper.
    """
    lo, hi = q[:, 0] + bias, q[:, 2] + bias
    return np.concatenate([lo - y, y - hi])


def _sample(scores: np.ndarray, k: int) -> np.ndarray:
    """At most ``k`` of each half of ``scores`` (lower, upper), evenly spread over their sorted order, as float16."""
    half = len(scores) // 2
    if half <= k:
        return scores.astype(np.float16)
    pick = np.linspace(0, half - 1, k).round().astype(int)
    return np.concatenate([np.sort(scores[:half])[pick], np.sort(scores[half:])[pick]]).astype(np.float16)
