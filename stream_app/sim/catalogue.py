"""The simulated catalogue: SKUs with categories, text, prices, launch dates and lifecycle parameters.

The text carries signal a text encoder can pick up: category words (a
category sets the lifecycle's pace), materials (they set the price),
Christmas words on seasonal items and "spare"/"replacement" on slow movers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stream_app.sim.bass import stage_boundaries
from stream_app.sim.scenarios import EARLY_DECLINE, REGULAR, SEASONAL, SLOW_MOVER, Scenarios


@dataclass(frozen=True)
class Category:
    """A category's typical list price (currency units), lifecycle pace (1: typical) and words."""

    price: float
    pace: float
    materials: tuple[str, ...]
    material_price: tuple[float, ...]  # price factor of each material
    nouns: tuple[str, ...]
    usage: str


CATEGORIES: dict[str, Category] = {
    "kitchen": Category(24.0, 0.8, ("enamel", "cast-iron", "bamboo", "ceramic"), (1.0, 1.7, 0.7, 0.9),
                        ("saucepan", "knife set", "cutting board", "mixing bowl"), "everyday cooking"),
    "toys": Category(18.0, 1.5, ("wooden", "plush", "magnetic", "musical"), (1.2, 0.8, 1.0, 1.3),
                     ("train set", "bear", "building blocks", "puzzle"), "children aged 3 and up"),
    "garden": Category(32.0, 0.9, ("galvanised", "folding", "solar", "terracotta"), (1.0, 1.2, 1.4, 0.7),
                       ("watering can", "planter", "lantern", "trowel"), "patios and balconies"),
    "home decor": Category(20.0, 1.2, ("glass", "rattan", "brass", "marble"), (0.8, 1.0, 1.4, 1.6),
                           ("vase", "candle holder", "photo frame", "wall clock"), "living rooms and hallways"),
    "stationery": Category(9.0, 1.0, ("recycled", "dotted", "leather", "pastel"), (0.8, 0.9, 1.8, 0.9),
                           ("notebook", "pen set", "planner", "sticky notes"), "school and office"),
    "lighting": Category(45.0, 0.9, ("dimmable", "rattan", "brass", "rechargeable"), (1.0, 0.9, 1.4, 1.2),
                         ("table lamp", "pendant", "string lights", "reading light"), "living rooms and bedrooms"),
    "bags": Category(39.0, 1.3, ("waterproof", "canvas", "vegan-leather", "foldable"), (1.1, 0.8, 1.5, 0.7),
                     ("backpack", "tote bag", "crossbody bag", "weekender"), "commuting and travel"),
    "textiles": Category(27.0, 1.1, ("linen", "organic cotton", "chunky-knit", "velvet"), (1.2, 1.0, 1.1, 1.3),
                         ("throw", "cushion cover", "tea towel", "duvet set"), "a cosy home"),
}
CATEGORY_NAMES = tuple(CATEGORIES)
COLOURS = ("sage", "navy", "ivory", "charcoal", "mustard", "terracotta red", "blush pink", "forest green")

# Lifecycle parameters per week of age, and their spreads (lognormal sigmas).
P_TYPICAL, P_SIGMA = 0.03, 0.4
Q_TYPICAL, Q_SIGMA = 0.4, 0.3
SLOW_PACE = 0.35  # slow movers age this much slower
SLOW_ORDERS = 12.0  # median lifetime orders of a slow mover
CLICKS_PER_ORDER, ADDS_PER_ORDER = 20.0, 3.0  # funnel medians; per-SKU spread below
PEAK_DAY_OF_DECEMBER, POST_CHRISTMAS_DAY = 10, 26


@dataclass(frozen=True)
class Catalogue:
    """Per-SKU parameters, arrays indexed by SKU.

    Days count from the simulation's first day (0); ``launch_day`` may be
    negative (launched before the window) and fractional (the launch hour).
    Ages are in weeks; ``cut_age`` is the age at which an early or
    post-Christmas decline starts (``inf``: none).
    """

    skus: list[str]
    category: np.ndarray
    material: np.ndarray
    noun: np.ndarray
    colour: np.ndarray
    price: np.ndarray
    launch_day: np.ndarray
    p: np.ndarray
    q: np.ndarray
    m: np.ndarray  # expected order lines over the whole lifecycle
    clicks_per_order: np.ndarray
    adds_per_order: np.ndarray
    kind: np.ndarray  # index into scenarios.SKU_KINDS
    cut_age: np.ndarray

    def __len__(self) -> int:
        return len(self.skus)

    def title(self, i: int) -> str:
        """The product title of SKU ``i``."""
        cat = CATEGORIES[CATEGORY_NAMES[self.category[i]]]
        material, noun, colour = cat.materials[self.material[i]], cat.nouns[self.noun[i]], COLOURS[self.colour[i]]
        if self.kind[i] == SEASONAL:
            return f"Christmas {colour} {material} {noun}"
        if self.kind[i] == SLOW_MOVER:
            return f"Spare part for {material} {noun}"
        return f"{colour.capitalize()} {material} {noun}"

    def description(self, i: int) -> str:
        """The product description of SKU ``i``: category, material, use, season."""
        name = CATEGORY_NAMES[self.category[i]]
        cat = CATEGORIES[name]
        material, noun = cat.materials[self.material[i]], cat.nouns[self.noun[i]]
        if self.kind[i] == SLOW_MOVER:
            return (f"Replacement part for our {material} {noun}; a specialist item for {cat.usage}, "
                    f"made to order, from our {name} range.")
        colour = COLOURS[self.colour[i]]
        article = "An" if colour[0] in "aeiou" else "A"
        text = f"{article} {colour} {material} {noun} for {cat.usage}; part of our {name} range."
        if self.kind[i] == SEASONAL:
            text += " A festive favourite for Christmas: a seasonal gift, in stock until December."
        return text


def draw_catalogue(rng: np.random.Generator, n: int, days: int, start_day: int, *,
                   orders_per_sku: float, max_age_days: int, scenarios: Scenarios) -> Catalogue:
    """Draw ``n`` SKUs for a window of ``days`` days starting at day index ``start_day`` (days since 1970).

    ``orders_per_sku``: median expected order lines over a regular SKU's
    lifecycle; ``max_age_days``: the oldest SKUs launched this many days
    before the window.
    """
    category = rng.integers(0, len(CATEGORIES), n)
    material, noun, colour = rng.integers(0, 4, n), rng.integers(0, 4, n), rng.integers(0, len(COLOURS), n)
    cats = [CATEGORIES[c] for c in CATEGORY_NAMES]
    base = np.array([c.price for c in cats])[category] * np.array([c.material_price for c in cats])[category, material]
    price = np.round(base * rng.lognormal(0.0, 0.25, n), 2)

    kind = _draw_kinds(rng, n, scenarios)
    pace = np.array([c.pace for c in cats])[category] * np.where(kind == SLOW_MOVER, SLOW_PACE, 1.0)
    p = np.clip(P_TYPICAL * rng.lognormal(0.0, P_SIGMA, n), 0.003, 0.2) * pace
    q = np.clip(Q_TYPICAL * rng.lognormal(0.0, Q_SIGMA, n), 0.05, 1.5) * pace
    m = np.where(kind == SLOW_MOVER, rng.lognormal(np.log(SLOW_ORDERS), 0.5, n),
                 rng.lognormal(np.log(orders_per_sku), 0.8, n))
    # A random launch hour, so launch days are partial days.
    launch = rng.integers(-max_age_days, max(days - 7, 1), n) + rng.integers(6, 14, n) / 24.0
    cut_age = np.full(n, np.inf)
    t1, peak, _ = stage_boundaries(p, q)

    early = kind == EARLY_DECLINE
    cut_age[early] = (t1 + rng.uniform(0.2, 0.9, n) * (peak - t1))[early]

    seasonal = kind == SEASONAL
    if seasonal.any():
        dec10, dec26 = _nearest_december(start_day, days)
        launch[seasonal] = (dec10 - start_day - peak * 7.0 + rng.normal(0.0, 3.0, n))[seasonal]
        cut_age[seasonal] = (dec26 - start_day - launch[seasonal]) / 7.0

    return Catalogue(
        skus=[f"sim-{i:06d}" for i in range(n)], category=category, material=material, noun=noun,
        colour=colour, price=price, launch_day=launch, p=p, q=q, m=m,
        clicks_per_order=CLICKS_PER_ORDER * rng.lognormal(-0.125, 0.5, n),
        adds_per_order=ADDS_PER_ORDER * rng.lognormal(-0.02, 0.2, n),
        kind=kind, cut_age=cut_age,
    )


def _draw_kinds(rng: np.random.Generator, n: int, scenarios: Scenarios) -> np.ndarray:
    """Each SKU's kind, with the scenarios' shares (exact counts, shuffled)."""
    kind = np.full(n, REGULAR, dtype=np.int8)
    order = rng.permutation(n)
    at = 0
    for k, name in ((SEASONAL, "seasonal"), (SLOW_MOVER, "slow_movers"), (EARLY_DECLINE, "early_decline")):
        count = int(round(scenarios.share(name) * n))
        kind[order[at : at + count]] = k
        at += count
    return kind


def _nearest_december(start_day: int, days: int) -> tuple[int, int]:
    """Day indices of 10 and 26 December of the year whose 10 December is nearest the window's middle."""
    from datetime import date, timedelta

    epoch = date(1970, 1, 1)
    middle = epoch + timedelta(days=start_day + days // 2)
    years = (middle.year - 1, middle.year)
    year = min(years, key=lambda y: abs((date(y, 12, PEAK_DAY_OF_DECEMBER) - middle).days))
    return ((date(year, 12, PEAK_DAY_OF_DECEMBER) - epoch).days,
            (date(year, 12, POST_CHRISTMAS_DAY) - epoch).days)
