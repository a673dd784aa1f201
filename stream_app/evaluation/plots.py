"""PNG plots of a backtest: forecasts against actuals for sample SKUs, error by stage, coverage.

matplotlib is imported inside each function (Agg backend, no display), so
importing this module costs nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.interface import HORIZONS
from stream_app.evaluation.backtest import Backtest
from stream_app.evaluation.metrics import KEY_HORIZON

NOMINAL_COVERAGE = 0.8  # p10 to p90


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def sample_rows(bt: Backtest, n: int = 6) -> np.ndarray:
    """``n`` SKUs (indices into ``bt.rows``) spread over the range of 7-day volume: big, middling and small sellers."""
    j = HORIZONS.index(KEY_HORIZON)
    volume = np.nansum(bt.targets[:, :, j], axis=0)
    order = np.argsort(-volume, kind="stable")
    order = order[volume[order] > 0]  # a SKU that sold only outside the 7-day targets shows nothing
    picks = np.unique(np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int))
    return order[picks]


def forecast_vs_actual(bt: Backtest, names: list[str], path: Path, n: int = 6) -> None:
    """Per sample SKU: units over the next 7 days at each origin, actual against p50 and the p10-p90 band."""
    plt = _pyplot()
    import matplotlib.dates as mdates

    j = HORIZONS.index(KEY_HORIZON)
    rows = sample_rows(bt, n)
    dates = bt.origins.astype("datetime64[D]")
    cols = 2
    fig, axes = plt.subplots(-(-len(rows) // cols), cols, figsize=(11, 2.6 * -(-len(rows) // cols)),
                             squeeze=False)
    for ax, r in zip(axes.ravel(), rows):
        ax.plot(dates, bt.targets[:, r, j], "k.-", label="actual", lw=1.5)
        for name in names:
            q = bt.quantiles[name][:, r, j, :]
            line, = ax.plot(dates, q[:, 1], lw=1, label=f"{name} p50")
            ax.fill_between(dates, q[:, 0], q[:, 2], color=line.get_color(), alpha=0.15)
        ax.set_title(bt.skus[r], fontsize=9)
        ax.tick_params(labelsize=7)
        locator = mdates.AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    for ax in axes.ravel()[len(rows):]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"Units over the next {KEY_HORIZON} days from each origin (band: p10-p90)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def error_by_stage(metrics: dict, path: Path) -> None:
    """Grouped bars: WAPE over the next 7 days per lifecycle stage at the origin, per forecaster."""
    plt = _pyplot()
    forecasters = metrics["forecasters"]
    stages = sorted({s for e in forecasters.values() for s in e.get("wape_7d_by_stage", {})},
                    key=lambda s: ["introduction", "growth", "maturity", "decline", "unlabelled"].index(s))
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(len(forecasters), 1)
    for k, (name, e) in enumerate(forecasters.items()):
        values = [e.get("wape_7d_by_stage", {}).get(s, np.nan) for s in stages]
        ax.bar(np.arange(len(stages)) + k * width, values, width, label=name)
    ax.set_xticks(np.arange(len(stages)) + 0.4 - width / 2, stages)
    ax.set_ylabel(f"WAPE, {KEY_HORIZON} days")
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("Error by lifecycle stage at the origin", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def coverage_plot(metrics: dict, path: Path) -> None:
    """Coverage of the p10-p90 interval per horizon and forecaster, against the nominal 80 %."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, e in metrics["forecasters"].items():
        ax.plot([str(h) for h in HORIZONS], [e["horizons"][str(h)]["coverage_p10_p90"] for h in HORIZONS],
                "o-", label=name)
    ax.axhline(NOMINAL_COVERAGE, color="k", ls="--", lw=1, label="nominal 80 %")
    ax.set_xlabel("horizon (days)")
    ax.set_ylabel("share of actuals in [p10, p90]")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
