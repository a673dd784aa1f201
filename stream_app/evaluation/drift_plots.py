"""PNG plots of a drift evaluation: coverage around each event with and without calibration, alert timelines.

matplotlib is imported inside each function (Agg backend, no display).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.interface import STAGES
from stream_app.evaluation.dayloop import DayForecasts, StageChanges
from stream_app.evaluation.plots import _pyplot

SHOWN_HORIZONS = ("1", "7")
STYLE = {"calibrated": ("tab:blue", "-"), "uncalibrated": ("tab:orange", "--")}


def coverage_around_events(doc: dict, path: Path) -> None:
    """Per scenario (rows) and horizon (columns): rolling p10–p90 coverage by offset from the event, both replays."""
    plt = _pyplot()
    rec = doc["rules"]["recovery"]
    offsets = np.arange(-rec["before"], rec["after"])
    low, high = rec["nominal"] - rec["band"], rec["nominal"] + rec["band"]
    scen = doc["scenarios"]
    fig, axes = plt.subplots(max(len(scen), 1), len(SHOWN_HORIZONS), figsize=(11, 2.8 * max(len(scen), 1)),
                             squeeze=False)
    for row, (key, entry) in zip(axes, scen.items()):
        for ax, h in zip(row, SHOWN_HORIZONS):
            for name, cov in entry["horizons"][h].items():
                colour, ls = STYLE.get(name, ("k", "-"))
                y = np.array([np.nan if v is None else v for v in cov["rolling"]], dtype=float)
                ax.plot(offsets, y, color=colour, ls=ls, lw=1.5,
                        label=f"{name} (back in {_days(cov['days_to_recover'])})")
            ax.axhspan(low, high, color="green", alpha=0.12, lw=0)
            ax.axhline(rec["nominal"], color="k", lw=0.8, ls=":")
            ax.axvline(0, color="k", lw=0.8)
            ax.set_ylim(0, 1.02)
            ax.set_title(f"{key}: {entry['note']} — {h}-day horizon", fontsize=9)
            ax.set_xlabel("offset: first day the forecast covers − event day", fontsize=8)
            ax.set_ylabel(f"coverage, trailing {rec['window']} d", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("p10–p90 coverage around each event (band: nominal ± 5 points)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _days(d) -> str:
    return "—" if d is None else f"{d} d"


def timeline_rows(truth: StageChanges, alerts: StageChanges, first_day: int, n: int = 6) -> np.ndarray:
    """``n`` panel rows with the most true changes and alerts in the period (ties: lower row first)."""
    score: dict[int, int] = {}
    for ch in (truth, alerts):
        for r in ch.rows[ch.days >= first_day].tolist():
            score[r] = score.get(r, 0) + 1
    return np.array(sorted(score, key=lambda r: (-score[r], r))[:n], dtype=np.int64)


def alert_timeline(fc: DayForecasts, stages: np.ndarray, tracked: np.ndarray, alerts: StageChanges,
                   matched: np.ndarray, skus: list[str], units: np.ndarray, rows: np.ndarray, first_day: int,
                   path: Path) -> None:
    """Per SKU: true stage, tracked stage, alerts (matched or false) and the 7-day units sold, over the period.

    ``stages``/``tracked``/``units`` ``(D, n)``: true and tracked stage (-1 none) and units sold each replayed day.
    """
    plt = _pyplot()
    keep = fc.days >= first_day
    dates = fc.days[keep].astype("datetime64[D]")
    fig, axes = plt.subplots(max(len(rows), 1), 1, figsize=(11, 2.0 * max(len(rows), 1)), squeeze=False)
    for ax, r in zip(axes[:, 0], rows):
        ax.step(dates, np.where(stages[keep, r] >= 0, stages[keep, r], np.nan), where="post", color="k", lw=1.5,
                label="true stage")
        ax.step(dates, np.where(tracked[keep, r] >= 0, tracked[keep, r], np.nan), where="post", color="tab:blue",
                lw=1, ls="--", label="tracked stage")
        mine = np.flatnonzero((alerts.rows == r) & (alerts.days >= first_day))
        for a in mine:
            ok = matched[a] >= 0
            ax.plot(np.datetime64(int(alerts.days[a]), "D"), alerts.stage[a], "^" if ok else "x",
                    color="tab:green" if ok else "tab:red", ms=8)
        ax.set_yticks(range(len(STAGES)), STAGES, fontsize=7)
        ax.set_ylim(-0.5, len(STAGES) - 0.5)
        ax.set_title(skus[r], fontsize=8)
        twin = ax.twinx()
        weekly = np.convolve(units[:, r], np.ones(7), mode="full")[: len(units)][keep]
        twin.fill_between(dates, weekly, color="grey", alpha=0.2, step="post")
        twin.tick_params(labelsize=7)
        twin.set_ylabel("units, 7 d", fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
    axes[0, 0].plot([], [], "^", color="tab:green", label="alert, matched")
    axes[0, 0].plot([], [], "x", color="tab:red", label="alert, false")
    axes[0, 0].legend(fontsize=7, loc="upper left", ncol=4)
    fig.suptitle("Stage alerts against the simulator's true stages (grey: units sold over the last 7 days)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
