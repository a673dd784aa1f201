"""Make the plots of docs/DATA.md: simulated lifecycles with their true stages, and real UCI SKUs.

Usage (matplotlib comes with the package):

    python docs/make_data_plots.py [--uci PATH/online_retail_....csv.gz] [--out docs/img]

Without ``--uci`` the real-data plot uses the committed sample
(tests/data/uci_online_retail_sample.csv.gz). Both plots go through the same
code as the worker's training data: the simulator or the adapter, then
``stream_app.data.offline.aggregate``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import orjson  # noqa: E402

from stream_app.data.offline import aggregate  # noqa: E402
from stream_app.data.replay import UciOnlineRetail  # noqa: E402
from stream_app.sim import STAGES, Simulator  # noqa: E402
from stream_app.sim.catalogue import CATEGORY_NAMES  # noqa: E402
from stream_app.sim.scenarios import EARLY_DECLINE, REGULAR, SEASONAL, SLOW_MOVER  # noqa: E402
from stream_app.sim.simulator import MEAN_QTY  # noqa: E402
from stream_app.core.windows import CLICKS, DAY_MS, UNITS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STAGE_COLOURS = {"introduction": "#dbe9f6", "growth": "#d5efd5", "maturity": "#fff1c9", "decline": "#f6d6d6"}
START_MS = 19_905 * DAY_MS  # 2024-07-01


def _series(items, skus: list[str], first_day: int, last_day: int) -> np.ndarray:
    """``(len(skus), 5, days)`` daily series of ``(kind, event)`` items, through the offline aggregation."""
    wanted = set(skus)
    s = aggregate((k, orjson.dumps(v)) for k, v in items if v.get("sku") in wanted)
    dense = s.dense(first_day, last_day)
    return dense[[s.skus.index(x) for x in skus]]


def _pick_simulated(sim: Simulator) -> list[tuple[str, int]]:
    """(title, SKU index): one SKU per scenario, the one selling most when its scenario matters."""
    c = sim.cat
    inside = (c.launch_day > 0) & (c.launch_day < sim.days * 0.4)
    promoted = sim.promo_start >= 0
    shifted = c.category == sim.shift_category
    at_promo = np.array([sim.day_truth(int(d)).orders[i] if d >= 0 else 0.0 for i, d in enumerate(sim.promo_start)])
    at_shift = sim.day_truth(min(sim.shift_day, sim.days - 1)).orders
    picks = [
        ("regular", inside & (c.kind == REGULAR) & ~promoted & ~shifted, c.m),
        ("promotion (one week)", (c.kind == REGULAR) & promoted & ~shifted, at_promo),
        ("early decline", inside & (c.kind == EARLY_DECLINE) & ~promoted, c.m),
        ("seasonal (Christmas)", (c.kind == SEASONAL) & ~promoted, c.m),
        ("slow mover", (c.kind == SLOW_MOVER) & (c.launch_day < sim.days * 0.3) & ~promoted, c.m),
        (f"level shift x{sim.shift_factor:g} on day {sim.shift_day} ({CATEGORY_NAMES[max(sim.shift_category, 0)]})",
         (c.kind == REGULAR) & shifted & ~promoted, at_shift),
    ]
    out = []
    for title, mask, score in picks:
        idx = np.flatnonzero(mask)
        if len(idx):
            out.append((title, int(idx[np.argmax(score[idx])])))
    return out


def plot_simulated(out: Path) -> Path:
    sim = Simulator(n_skus=400, days=240, start_ms=START_MS, seed=7)
    picks = _pick_simulated(sim)
    skus = [sim.skus[i] for _, i in picks]
    first = sim.start_day
    series = _series(sim.events(), skus, first, first + sim.days - 1)
    truth = [sim.day_truth(d) for d in range(sim.days)]
    days = np.arange(first, first + sim.days).astype("datetime64[D]")
    fig, axes = plt.subplots(3, 2, figsize=(13, 10), sharex=True)
    for ax, (title, i), x in zip(axes.flat, picks, series):
        stage = np.array([t.stage[i] for t in truth])
        for d in range(sim.days):
            if stage[d] >= 0:
                ax.axvspan(days[d], days[d] + 1, color=STAGE_COLOURS[STAGES[stage[d]]], lw=0)
        ax.bar(days, x[UNITS], width=1.0, color="#4a6fa5", label="units sold (simulated)")
        ax.plot(days, [t.orders[i] * MEAN_QTY for t in truth], color="black", lw=1.2, label="expected units (truth)")
        ax.plot(days, x[CLICKS] / sim.cat.clicks_per_order[i] * MEAN_QTY, color="#d9822b", lw=0.9, alpha=0.8,
                label="views / views per order (leads)")
        promo = [t.promo[i] for t in truth]
        if any(promo):
            ax.plot(days[np.array(promo)], np.zeros(sum(promo)), "v", color="purple", label="promotion")
        ax.set_title(f"{title}: {sim.skus[i]}", fontsize=10)
        ax.set_ylabel("units / day")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in STAGE_COLOURS.values()]
    lines, labels = axes.flat[1].get_legend_handles_labels()
    fig.legend(handles + lines, list(STAGE_COLOURS) + labels, loc="lower center", ncol=4, fontsize=9)
    fig.suptitle("Simulated lifecycles (seed 7); background: true stage", fontsize=12)
    fig.autofmt_xdate()
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    path = out / "sim_lifecycles.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_uci(out: Path, source: Path) -> Path:
    rows = list(UciOnlineRetail(source).rows())
    titles = {v["sku"]: v["title"] for k, v in rows if k == "catalog"}
    orders = [v for k, v in rows if k == "orders"]
    first = min(o["ts"] for o in orders) // DAY_MS
    last = max(o["ts"] for o in orders) // DAY_MS
    units, lines, first_sale = {}, {}, {}
    for o in orders:
        units[o["sku"]] = units.get(o["sku"], 0) + o["qty"]
        lines[o["sku"]] = lines.get(o["sku"], 0) + 1
        first_sale.setdefault(o["sku"], o["ts"] // DAY_MS)
    busy = sorted(lines, key=lambda s: -lines[s])
    span = last - first + 1

    def first_of(pred):
        return next((s for s in busy if pred(s)), None)

    picks = [
        ("most order lines", busy[0]),
        ("new product (first sale after a third of the span)", first_of(lambda s: first_sale[s] > first + span // 3)),
        ("Christmas item", first_of(lambda s: "CHRISTMAS" in titles.get(s, ""))),
        ("intermittent", first_of(lambda s: 10 <= lines[s] <= 40)),
    ]
    picks = [(t, s) for t, s in picks if s is not None]
    series = _series(rows, [s for _, s in picks], first, last)
    days = np.arange(first, last + 1).astype("datetime64[D]")
    fig, axes = plt.subplots(len(picks), 1, figsize=(13, 2.6 * len(picks)), sharex=True)
    for ax, (title, sku), x in zip(np.atleast_1d(axes), picks, series):
        ax.bar(days, x[UNITS], width=1.0, color="#4a6fa5")
        weekly = np.convolve(x[UNITS], np.ones(7) / 7, mode="same")
        ax.plot(days, weekly, color="black", lw=1, label="7-day mean")
        ax.set_title(f"{title}: {sku} {titles.get(sku, '')}", fontsize=10)
        ax.set_ylabel("units / day")
        ax.set_yscale("symlog", linthresh=10)
    fig.suptitle(f"UCI Online Retail, daily units of real SKUs ({source.name}); gaps: the shop was closed",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path = out / "uci_skus.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uci", type=Path, default=ROOT / "tests" / "data" / "uci_online_retail_sample.csv.gz")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in (plot_simulated(args.out), plot_uci(args.out, args.uci)):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
