"""The built-in demo event generator: a small catalogue and its clicks, carts and orders.

Pure (no Kafka): it yields plain dicts that follow the topic contracts, in
event-time order, and is deterministic for a seed. Each SKU has a lifecycle
shaped like Bass diffusion (innovation ``p``, imitation ``q``, market size
``m``) in *weeks* since launch, so a 60-day window shows introduction, growth,
maturity and decline side by side. Daily demand is that curve times a weekly
pattern; counts are Poisson, so there is no ground truth beyond the curve
itself (a richer simulator with ground truth is a separate piece of work).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import orjson

DAY_MS = 86_400_000
WEEK_DAYS = 7.0

# Funnel per expected order; the worker's features rely on these rough ratios.
CLICKS_PER_ORDER = 20.0
ADDS_PER_ORDER = 3.0
REMOVE_SHARE = 0.2
EVENTS_PER_ORDER = 1.0 + CLICKS_PER_ORDER + ADDS_PER_ORDER * (1.0 + REMOVE_SHARE)

# Monday first; weekends sell more online. Normalised to a mean of 1 below.
_WEEKLY = np.array([0.95, 0.92, 0.93, 0.97, 1.05, 1.13, 1.05])
_WEEKLY = _WEEKLY / _WEEKLY.mean()
# Share of a day's events per UTC hour: quiet nights, lunch bump, evening peak.
_HOURLY = np.array([0.6, 0.35, 0.2, 0.15, 0.15, 0.25, 0.5, 1.0, 1.4, 1.6, 1.7, 1.8,
                    2.0, 1.9, 1.7, 1.6, 1.6, 1.8, 2.1, 2.5, 2.8, 2.6, 1.9, 1.1])
_HOURLY_CDF = np.cumsum(_HOURLY / _HOURLY.sum())

# category -> (typical price, adjectives, nouns, what it is for)
CATEGORIES: dict[str, tuple[float, tuple[str, ...], tuple[str, ...], str]] = {
    "kitchen": (24.0, ("enamel", "cast-iron", "bamboo", "ceramic"), ("saucepan", "knife set", "cutting board", "mixing bowl"), "everyday cooking"),
    "toys": (18.0, ("wooden", "plush", "magnetic", "musical"), ("train set", "bear", "building blocks", "puzzle"), "children aged 3 and up"),
    "garden": (32.0, ("galvanised", "folding", "solar", "terracotta"), ("watering can", "planter", "lantern", "trowel"), "patios and balconies"),
    "christmas decor": (14.0, ("glass", "glitter", "felt", "LED"), ("bauble", "wreath", "star topper", "garland"), "the festive season"),
    "stationery": (9.0, ("recycled", "dotted", "leather", "pastel"), ("notebook", "pen set", "planner", "sticky notes"), "school and office"),
    "lighting": (45.0, ("dimmable", "rattan", "brass", "rechargeable"), ("table lamp", "pendant", "string lights", "reading light"), "living rooms and bedrooms"),
    "bags": (39.0, ("waterproof", "canvas", "vegan-leather", "foldable"), ("backpack", "tote bag", "crossbody bag", "weekender"), "commuting and travel"),
    "textiles": (27.0, ("linen", "organic cotton", "chunky-knit", "velvet"), ("throw", "cushion cover", "tea towel", "duvet set"), "a cosy home"),
}
_CATEGORY_NAMES = tuple(CATEGORIES)
_QTY = np.array([1, 2, 3, 4, 5])
_QTY_P = np.array([0.68, 0.2, 0.08, 0.03, 0.01])
_KIND_NAMES = ("clicks", "carts", "carts", "orders")  # codes 0..3; 1 = add, 2 = remove


def _bass_per_day(weeks_since_launch: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Bass adoption density per day (fraction of ``m``); 0 before launch."""
    t = np.maximum(weeks_since_launch, 0.0)
    e = np.exp(-(p + q) * t)
    per_week = (p + q) ** 2 / p * e / (1.0 + q / p * e) ** 2
    return np.where(weeks_since_launch >= 0, per_week / WEEK_DAYS, 0.0)


class DemoGenerator:
    """Simulated catalogue and events for ``n_skus`` SKUs over ``days`` days from ``start_ms``.

    ``events_per_sku_day`` is the mean number of events (clicks, cart actions
    and orders together) per SKU and day over the whole window, unlaunched
    SKU-days included; about 1 in 25 events is an order. ``launch_share`` of
    the SKUs launch inside the window, the others up to ``max_age_days``
    before it. The object holds only immutable per-SKU parameters: every call
    of :meth:`events` replays the same stream.
    """

    def __init__(self, n_skus: int, days: int, start_ms: int, seed: int = 7, *,
                 events_per_sku_day: float = 25.0, launch_share: float = 0.25,
                 max_age_days: int = 300, currency: str = "EUR") -> None:
        if n_skus < 1 or days < 1 or events_per_sku_day <= 0:
            raise ValueError("n_skus and days must be >= 1 and events_per_sku_day > 0")
        self.n_skus, self.days, self.start_ms, self.seed = n_skus, days, int(start_ms), seed
        self.currency = currency
        rng = np.random.default_rng([seed, 0])
        n = n_skus
        self.skus = [f"sku-{i:06d}" for i in range(n)]
        self.category = rng.integers(0, len(CATEGORIES), n)
        base = np.array([CATEGORIES[c][0] for c in _CATEGORY_NAMES])[self.category]
        self.price = np.round(base * rng.lognormal(0.0, 0.35, n), 2)
        self._words = rng.integers(0, 4, (n, 2))
        # Launch times in ms; a random hour of the day, so launch days are partial.
        in_window = rng.random(n) < launch_share
        launch_day = np.where(in_window, rng.integers(0, days, n), -rng.integers(1, max_age_days + 1, n))
        self.launched_at = self.start_ms + launch_day * DAY_MS + rng.integers(6, 14, n) * 3_600_000
        # Per-SKU diffusion speed and funnel differ: no two SKUs look alike.
        self.p = 0.03 * rng.lognormal(0.0, 0.3, n)
        self.q = np.clip(0.4 * rng.lognormal(0.0, 0.3, n), 0.05, 1.5)
        m = rng.lognormal(0.0, 1.0, n)
        self.click_rate = CLICKS_PER_ORDER * rng.lognormal(-0.125, 0.5, n)  # mean stays 20
        # Scale market sizes so the window's mean events per SKU-day is as asked.
        total = sum(float((m * self._curve(d)).sum()) for d in range(days))
        target_orders = events_per_sku_day / EVENTS_PER_ORDER * n * days
        self.m = m * (target_orders / total if total > 0 else 0.0)

    def _curve(self, day: int) -> np.ndarray:
        """Expected orders per SKU on window ``day`` for ``m = 1`` (launch day pro rata)."""
        day_start = self.start_ms + day * DAY_MS
        # Age at the middle of the part of the day the SKU is on sale.
        mid = (np.maximum(day_start, self.launched_at) + day_start + DAY_MS) / 2
        mid_weeks = (mid - self.launched_at) / (DAY_MS * WEEK_DAYS)
        live = np.clip((day_start + DAY_MS - self.launched_at) / DAY_MS, 0.0, 1.0)
        weekday = (day_start // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday
        return _bass_per_day(mid_weeks, self.p, self.q) * live * _WEEKLY[weekday]

    def catalog(self) -> list[dict]:
        """One catalogue record per SKU (``launched_at`` and prices as in the events)."""
        out = []
        for i, sku in enumerate(self.skus):
            name = _CATEGORY_NAMES[self.category[i]]
            _, adjs, nouns, usage = CATEGORIES[name]
            adj, noun = adjs[self._words[i, 0]], nouns[self._words[i, 1]]
            out.append({
                "schema_version": 1, "sku": sku, "title": f"{adj.capitalize()} {noun}",
                "description": f"A {adj} {noun} for {usage}; part of our {name} range.",
                "category": name, "price": float(self.price[i]), "launched_at": int(self.launched_at[i]),
            })
        return out

    def events(self) -> Iterator[tuple[str, dict]]:
        """Yield ``(kind, event)`` with kind ``clicks``/``carts``/``orders``, ts non-decreasing."""
        rng = np.random.default_rng([self.seed, 1])
        counter = 0
        for day in range(self.days):
            cols = self._day(rng, day)
            yield from self._dicts(cols, counter)
            counter += len(cols[0])

    def _day(self, rng: np.random.Generator, day: int) -> tuple[list, ...]:
        """One day's events as parallel columns, sorted by ts (vectorised)."""
        lam = self.m * self._curve(day)
        n_orders = rng.poisson(lam)
        n_clicks = rng.poisson(lam * self.click_rate)
        n_adds = rng.poisson(lam * ADDS_PER_ORDER)
        n_removes = rng.binomial(n_adds, REMOVE_SHARE)
        counts = np.concatenate([n_clicks, n_adds, n_removes, n_orders])
        kind = np.repeat(np.arange(4), [n_clicks.sum(), n_adds.sum(), n_removes.sum(), n_orders.sum()])
        sku = np.repeat(np.tile(np.arange(self.n_skus), 4), counts)
        total = len(sku)
        # Time of day from the hourly profile; on a launch day, squeeze into the live part.
        hour = np.searchsorted(_HOURLY_CDF, rng.random(total), side="right").clip(0, 23)
        frac = (hour + rng.random(total)) / 24.0
        day_start = self.start_ms + day * DAY_MS
        lo = np.clip(self.launched_at[sku] - day_start, 0, DAY_MS - 1)
        ts = day_start + lo + (frac * (DAY_MS - lo)).astype(np.int64)
        qty = _QTY[np.searchsorted(np.cumsum(_QTY_P), rng.random(total), side="right").clip(0, 4)]
        qty = np.where(kind == 0, 1, np.where(kind == 2, 1 + (rng.random(total) < 0.1), qty))
        # One order in ten gets a 10 % discount.
        price = self.price[sku] * np.where((kind == 3) & (rng.random(total) < 0.1), 0.9, 1.0)
        user = rng.integers(0, max(1000, self.n_skus * 50), total)
        order = np.argsort(ts, kind="stable")
        return (kind[order].tolist(), sku[order].tolist(), ts[order].tolist(), qty[order].tolist(),
                np.round(price[order], 2).tolist(), user[order].tolist())

    def _dicts(self, cols: tuple[list, ...], counter: int) -> Iterator[tuple[str, dict]]:
        seed, skus, cur = self.seed, self.skus, self.currency
        for i, (k, s, ts, qty, price, user) in enumerate(zip(*cols), counter):
            if k == 0:
                yield "clicks", {"schema_version": 1, "event_id": f"c-{seed}-{i}", "sku": skus[s], "ts": ts,
                                 "session_id": f"s-{seed}-{user}-{ts // 1_800_000}", "user_id": f"u-{user}"}
            elif k == 3:
                yield "orders", {"schema_version": 1, "event_id": f"o-{seed}-{i}", "order_id": f"ord-{seed}-{i}",
                                 "sku": skus[s], "ts": ts, "qty": qty, "unit_price": price, "currency": cur}
            else:
                yield "carts", {"schema_version": 1, "event_id": f"k-{seed}-{i}", "sku": skus[s], "ts": ts,
                                "qty": qty, "action": "add" if k == 1 else "remove"}


def write_jsonl(path: str | Path, items: Iterable[tuple[str, dict]]) -> int:
    """Write ``(topic, value)`` pairs as ``{"topic": ..., "value": ...}`` lines; returns lines written."""
    n = 0
    with open(path, "wb", buffering=1 << 20) as f:
        for topic, value in items:
            f.write(orjson.dumps({"topic": topic, "value": value}))
            f.write(b"\n")
            n += 1
    return n
