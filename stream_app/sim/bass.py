"""The Bass diffusion curve and the lifecycle stages read off it.

Bass (1969): of a market of ``m`` buyers, the share that has bought by age
``t`` is ``F(t) = (1 - e^{-(p+q)t}) / (1 + (q/p) e^{-(p+q)t})``, and the
adoption rate is its derivative ``f(t)``. ``p`` (innovation) is the pull of
the product itself, ``q`` (imitation) the pull of earlier buyers; both are
per unit of age (here: per week). Typical values: ``p ~ 0.03``, ``q ~ 0.4``.

Stage rule (Mahajan, Muller & Srivastava 1990, "Determination of adopter
categories by using innovation diffusion models", J. Marketing Research 27):
the rate ``f`` peaks at ``T* = ln(q/p) / (p+q)`` (the inflection point of
``F``), and ``f`` has its own inflection points at
``T1,2 = T* -/+ ln(2 + sqrt 3) / (p+q)``, where sales accelerate and then
decelerate fastest. So:

* introduction: ``0 <= t < T1``
* growth:       ``T1 <= t < T*``
* maturity:     ``T* <= t < T2``
* decline:      ``t >= T2``

Points before launch are clipped to 0: with ``q <= p (2 + sqrt 3)`` there is
no introduction, and with ``q <= p`` sales fall from the first day (maturity).

Examples
--------
>>> t1, peak, t2 = stage_boundaries(0.03, 0.4)
>>> [round(float(x), 2) for x in (t1, peak, t2)]
[2.96, 6.02, 9.09]
>>> [STAGES[s] for s in stage_at(np.array([1.0, 4.0, 7.0, 12.0]), 0.03, 0.4)]
['introduction', 'growth', 'maturity', 'decline']
"""

from __future__ import annotations

import numpy as np

STAGES = ("introduction", "growth", "maturity", "decline")
INTRODUCTION, GROWTH, MATURITY, DECLINE = range(4)
_LN_2_SQRT3 = float(np.log(2.0 + np.sqrt(3.0)))


def adoption_rate(age: np.ndarray, p: np.ndarray | float, q: np.ndarray | float) -> np.ndarray:
    """``f(t)``: share of the market buying per unit of age at ``age`` (0 before launch, age < 0)."""
    t = np.maximum(age, 0.0)
    e = np.exp(-(p + q) * t)
    rate = (p + q) ** 2 / p * e / (1.0 + q / p * e) ** 2
    return np.where(age >= 0, rate, 0.0)


def adopted(age: np.ndarray, p: np.ndarray | float, q: np.ndarray | float) -> np.ndarray:
    """``F(t)``: share of the market that has bought by ``age`` (0 before launch)."""
    t = np.maximum(age, 0.0)
    e = np.exp(-(p + q) * t)
    return (1.0 - e) / (1.0 + q / p * e)


def stage_boundaries(p: np.ndarray | float, q: np.ndarray | float) -> tuple:
    """``(T1, T*, T2)`` in units of age (see the module's stage rule), each clipped at 0."""
    s = p + q
    peak = np.log(np.divide(q, p)) / s
    half = _LN_2_SQRT3 / s
    return np.maximum(peak - half, 0.0), np.maximum(peak, 0.0), np.maximum(peak + half, 0.0)


def stage_at(age: np.ndarray, p: np.ndarray | float, q: np.ndarray | float) -> np.ndarray:
    """Stage index (into :data:`STAGES`) at each ``age`` >= 0, by the module's rule."""
    t1, peak, t2 = stage_boundaries(p, q)
    return (age >= t1).astype(np.int8) + (age >= peak) + (age >= t2)
