"""The lifecycle simulator: a catalogue, its daily demand with ground truth, and the events it causes.

Pure (no Kafka): arrays and iterators of plain dicts that follow the topic
contracts, in event-time order, the same for the same seed.

Demand. Each SKU's expected order lines per day are ``m * f(age) / 7``: the
Bass adoption rate (:mod:`stream_app.sim.bass`, per week of age) times the
market size, cut by an early or post-Christmas decline where the scenarios
say so, times a weekly pattern, a category level shift and a promotion
uplift. The day's realised demand is that times a Gamma shock (one per SKU
and day, shared by the whole funnel) and Poisson noise.

Funnel. Shoppers look before they buy: a day's views follow the lifecycle
``CLICK_LEAD_DAYS`` ahead (times the SKU's clicks per order), cart adds
``CART_LEAD_DAYS`` ahead (times its adds per order), and a share of the
adds is removed again. So click and cart activity leads orders.

Truth. For every SKU and day since its launch the simulator knows the
stage (the rule in :mod:`stream_app.sim.bass`, with ``decline`` from an
early or post-Christmas cut on), the expected orders, units and clicks, and
which scenario touched the day (:meth:`Simulator.labels`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from stream_app.sim.bass import DECLINE, STAGES, adoption_rate, stage_at
from stream_app.sim.catalogue import CATEGORY_NAMES, Catalogue, draw_catalogue
from stream_app.sim.scenarios import SKU_KINDS, Scenarios

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
CLICK_LEAD_DAYS = 3.0
CART_LEAD_DAYS = 1.0
REMOVE_SHARE = 0.2  # of cart adds
SHOCK_SHAPE = 8.0  # Gamma shape of the daily demand shock: coefficient of variation 1/sqrt(8) = 0.35
QTY = np.array([1, 2, 3, 4, 6])
QTY_P = np.array([0.66, 0.2, 0.08, 0.04, 0.02])
MEAN_QTY = float(QTY @ QTY_P)
# Monday first: weekends sell more online. Mean 1.
WEEKLY = np.array([0.95, 0.92, 0.93, 0.97, 1.05, 1.13, 1.05])
WEEKLY = WEEKLY / WEEKLY.mean()
# Relative activity per UTC hour: quiet nights, a lunch bump, an evening peak.
HOURLY = np.array([0.6, 0.35, 0.2, 0.15, 0.15, 0.25, 0.5, 1.0, 1.4, 1.6, 1.7, 1.8,
                   2.0, 1.9, 1.7, 1.6, 1.6, 1.8, 2.1, 2.5, 2.8, 2.6, 1.9, 1.1])
HOURLY_CDF = np.cumsum(HOURLY / HOURLY.sum())
KINDS = ("clicks", "carts", "carts", "orders")  # event codes 0..3: click, cart add, cart remove, order


@dataclass(frozen=True)
class DayTruth:
    """The true state of every SKU on one day (arrays indexed by SKU; per day, not per event).

    ``orders``, ``adds``, ``clicks``: expected order lines, cart adds and views
    (before the shock and Poisson noise); ``stage``: index into
    :data:`~stream_app.sim.bass.STAGES`, -1 before launch; ``promo``: on
    promotion; ``shift``: the level-shift factor in force (1.0: none).
    """

    day: int
    orders: np.ndarray
    adds: np.ndarray
    clicks: np.ndarray
    stage: np.ndarray
    promo: np.ndarray
    shift: np.ndarray


class Simulator:
    """``n_skus`` SKUs over ``days`` days from ``start_ms`` (epoch ms, a UTC midnight).

    ``orders_per_sku``: median expected order lines over a regular SKU's
    lifecycle; ``max_age_days``: how long before the window the oldest SKUs
    launched. The object holds only parameters: :meth:`events` replays the
    same stream on every call.

    Examples
    --------
    >>> sim = Simulator(n_skus=20, days=14, start_ms=20_000 * DAY_MS, seed=1)
    >>> first = next(sim.events())
    >>> first[0], sorted(first[1])[:3]
    ('clicks', ['event_id', 'schema_version', 'session_id'])
    """

    def __init__(self, n_skus: int, days: int, start_ms: int, seed: int = 7, *, orders_per_sku: float = 150.0,
                 max_age_days: int = 180, scenarios: Scenarios | None = None, currency: str = "EUR") -> None:
        if n_skus < 1 or days < 1 or orders_per_sku <= 0 or start_ms % DAY_MS:
            raise ValueError("n_skus and days must be >= 1, orders_per_sku > 0, start_ms a UTC midnight")
        self.n_skus, self.days, self.start_ms, self.seed = n_skus, days, int(start_ms), seed
        self.start_day = self.start_ms // DAY_MS
        self.currency = currency
        self.scenarios = scenarios if scenarios is not None else Scenarios()
        rng = np.random.default_rng([seed, 0])
        self.cat: Catalogue = draw_catalogue(rng, n_skus, days, self.start_day, orders_per_sku=orders_per_sku,
                                             max_age_days=max_age_days, scenarios=self.scenarios)
        self.skus = self.cat.skus
        self.promo_start = self._draw_promotions(rng)
        self.shift_category, self.shift_day, self.shift_factor = self._draw_level_shift(rng)
        s = self.scenarios  # no draw: the runs of the scenarios in "all" stay as they were
        on = s.on("conversion_shift")
        self.conversion_day = int(round(s.conversion_shift_at * self.days)) if on else self.days
        self.conversion_factor = s.conversion_shift_factor if on else 1.0

    # --- scenarios ---------------------------------------------------------------
    def _draw_promotions(self, rng: np.random.Generator) -> np.ndarray:
        """First day of each SKU's promotion (window day index), -1 for none."""
        s = self.scenarios
        n, length = self.n_skus, s.promotion_days
        chosen = rng.random(n) < s.share("promotion")
        first = np.maximum(np.ceil(self.cat.launch_day), 0).astype(np.int64)
        last = self.days - length
        start = first + (rng.random(n) * np.maximum(last - first + 1, 0)).astype(np.int64)
        return np.where(chosen & (first <= last), start, -1)

    def _draw_level_shift(self, rng: np.random.Generator) -> tuple[int, int, float]:
        """(category index, window day, factor) of the level shift; category -1 when it is off."""
        s = self.scenarios
        category = int(rng.integers(0, len(CATEGORY_NAMES)))
        factor = float(rng.choice(s.level_shift_factors))
        if not s.on("level_shift"):
            return -1, self.days, 1.0
        return category, int(round(s.level_shift_at * self.days)), factor

    def cut_days(self) -> np.ndarray:
        """Window day from which each SKU's true stage is ``decline`` because of an early or post-Christmas cut.

        -1 for SKUs without a cut, or whose cut falls outside the window.
        :meth:`day_truth` dates a day by its middle (``day + 0.5`` days after
        launch), so the first cut day is the first whose middle is at or past
        ``cut_age``.
        """
        c = self.cat
        finite = np.isfinite(c.cut_age)
        at = np.ceil(c.launch_day + 7.0 * np.where(finite, c.cut_age, 0.0) - 0.5)
        at = np.maximum(at, np.ceil(c.launch_day))  # not before the first full day on sale
        return np.where(finite & (at >= 0) & (at < self.days), at, -1).astype(np.int64)

    # --- truth --------------------------------------------------------------------
    def lifecycle(self, age_weeks: np.ndarray) -> np.ndarray:
        """Expected order lines per day at ``age_weeks`` (per SKU), before weekday and scenario factors."""
        c = self.cat
        tau_weeks = self.scenarios.decline_tau_days / 7.0
        cut = np.isfinite(c.cut_age) & (age_weeks > c.cut_age)
        at_cut = adoption_rate(np.where(cut, c.cut_age, age_weeks), c.p, c.q)
        decay = np.where(cut, np.exp(-(age_weeks - np.where(cut, c.cut_age, 0.0)) / tau_weeks), 1.0)
        return c.m * at_cut * decay / 7.0

    def day_truth(self, day: int) -> DayTruth:
        """Expected demand, stage and scenario flags of every SKU on window ``day`` (0-based)."""
        c, s = self.cat, self.scenarios
        # A launch day counts pro rata, at the middle of its part on sale.
        live = np.clip(day + 1 - c.launch_day, 0.0, 1.0)
        age_days = (np.maximum(day, c.launch_day) + day + 1) / 2 - c.launch_day
        age = age_days / 7.0
        promo = (self.promo_start >= 0) & (day >= self.promo_start) & (day < self.promo_start + s.promotion_days)
        shift = np.where((c.category == self.shift_category) & (day >= self.shift_day), self.shift_factor, 1.0)
        funnel = self.conversion_factor if day >= self.conversion_day else 1.0
        weekday = (self.start_day + day + 3) % 7  # 1970-01-01 was a Thursday
        factor = live * WEEKLY[weekday] * shift * np.where(promo, 1.0 + s.promotion_uplift, 1.0)
        stage = stage_at(age, c.p, c.q)
        stage = np.where(np.isfinite(c.cut_age) & (age >= c.cut_age), DECLINE, stage)
        return DayTruth(
            day=day,
            orders=self.lifecycle(age) * factor,
            adds=self.lifecycle(age + CART_LEAD_DAYS / 7.0) * c.adds_per_order * factor * funnel,
            clicks=self.lifecycle(age + CLICK_LEAD_DAYS / 7.0) * c.clicks_per_order * factor * funnel,
            stage=np.where(live > 0, stage, -1).astype(np.int8),
            promo=promo & (live > 0),
            shift=shift,
        )

    def labels(self, day: int, truth: DayTruth | None = None) -> Iterator[dict]:
        """Ground-truth rows of ``day`` for every launched SKU (see :data:`LABEL_COLUMNS`)."""
        t = truth if truth is not None else self.day_truth(day)
        c = self.cat
        day_index = self.start_day + day
        date = np.datetime_as_string(np.datetime64(day_index, "D"))
        for i in np.flatnonzero(t.stage >= 0):
            yield {"day": day_index, "date": date, "sku": self.skus[i], "stage": STAGES[t.stage[i]],
                   "expected_orders": round(float(t.orders[i]), 6),
                   "expected_units": round(float(t.orders[i]) * MEAN_QTY, 6),
                   "expected_clicks": round(float(t.clicks[i]), 6), "promo": int(t.promo[i]),
                   "level_shift": float(t.shift[i]), "sku_kind": SKU_KINDS[c.kind[i]]}

    # --- output -------------------------------------------------------------------
    def catalog(self) -> list[dict]:
        """One ``catalog`` record per SKU (``launched_at`` in epoch ms, ``price`` in currency units)."""
        c = self.cat
        return [{"schema_version": 1, "sku": sku, "title": c.title(i), "description": c.description(i),
                 "category": CATEGORY_NAMES[c.category[i]], "price": float(c.price[i]),
                 "launched_at": int(self.start_ms + round(c.launch_day[i] * DAY_MS))}
                for i, sku in enumerate(self.skus)]

    def events(self) -> Iterator[tuple[str, dict]]:
        """Yield ``(topic, event)`` for clicks, carts and orders, ``ts`` non-decreasing (epoch ms)."""
        rng = np.random.default_rng([self.seed, 1])
        counter = 0
        for day in range(self.days):
            for item in self.day_events(rng, day, counter):
                counter += 1
                yield item

    def day_events(self, rng: np.random.Generator, day: int, counter: int) -> Iterator[tuple[str, dict]]:
        """One day's events in ts order; ``counter`` numbers their event ids. Draws from ``rng``."""
        t = self.day_truth(day)
        n = self.n_skus
        shock = rng.gamma(SHOCK_SHAPE, 1.0 / SHOCK_SHAPE, n)
        n_clicks, n_adds, n_orders = (rng.poisson(lam * shock) for lam in (t.clicks, t.adds, t.orders))
        n_removes = rng.binomial(n_adds, REMOVE_SHARE)
        counts = np.concatenate([n_clicks, n_adds, n_removes, n_orders])
        code = np.repeat(np.arange(4), [n_clicks.sum(), n_adds.sum(), n_removes.sum(), n_orders.sum()])
        sku = np.repeat(np.tile(np.arange(n), 4), counts)
        total = len(sku)
        # Time of day from the hourly profile; on a launch day, only the part after the launch.
        hour = np.searchsorted(HOURLY_CDF, rng.random(total), side="right").clip(0, 23)
        frac = (hour + rng.random(total)) / 24.0
        day_start = self.start_ms + day * DAY_MS
        launched = self.start_ms + np.round(self.cat.launch_day * DAY_MS).astype(np.int64)
        lo = np.clip(launched[sku] - day_start, 0, DAY_MS - 1)
        ts = day_start + lo + (frac * (DAY_MS - lo)).astype(np.int64)
        qty = QTY[np.searchsorted(np.cumsum(QTY_P), rng.random(total), side="right").clip(0, len(QTY) - 1)]
        qty = np.where(code == 0, 1, np.where(code == 3, qty, 1 + (rng.random(total) < 0.1)))
        discount = np.where(t.promo, 1.0 - self.scenarios.promotion_discount, 1.0)
        price = np.round(self.cat.price * discount, 2)[sku]
        user = rng.integers(0, max(1000, n * 50), total)
        order = np.argsort(ts, kind="stable")
        yield from self._dicts(counter, code[order], sku[order], ts[order], qty[order], price[order], user[order])

    def _dicts(self, counter: int, *cols: np.ndarray) -> Iterator[tuple[str, dict]]:
        seed, skus, currency = self.seed, self.skus, self.currency
        for i, (k, s, ts, qty, price, user) in enumerate(zip(*(c.tolist() for c in cols)), counter):
            sku = skus[s]
            if k == 0:
                yield "clicks", {"schema_version": 1, "event_id": f"sc-{seed}-{i}", "sku": sku, "ts": ts,
                                 "session_id": f"s-{seed}-{user}-{ts // (HOUR_MS // 2)}", "user_id": f"u-{user}"}
            elif k == 3:
                yield "orders", {"schema_version": 1, "event_id": f"so-{seed}-{i}", "order_id": f"sord-{seed}-{i}",
                                 "sku": sku, "ts": ts, "qty": qty, "unit_price": price, "currency": currency}
            else:
                yield "carts", {"schema_version": 1, "event_id": f"sk-{seed}-{i}", "sku": sku, "ts": ts,
                                "qty": qty, "action": "add" if k == 1 else "remove"}


LABEL_COLUMNS = ("day", "date", "sku", "stage", "expected_orders", "expected_units", "expected_clicks",
                 "promo", "level_shift", "sku_kind")
