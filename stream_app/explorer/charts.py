"""Inline SVG charts of the explorer page, drawn here: no charting library, nothing fetched by the browser.

Each chart is a string of SVG. Shapes carry a class (styled by the page)
and a ``<title>`` with the exact numbers, which a browser shows on hover.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape

from stream_app.explorer.view import HORIZONS, Forecast, Outcome

W, H = 760, 250
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 24, 28
STAGE_COLOURS = {"introduction": "#9ecae1", "growth": "#74c476", "maturity": "#fdae6b", "decline": "#e6550d"}


def date(day: int) -> str:
    """A UTC day number as YYYY-MM-DD."""
    return datetime.fromtimestamp(day * 86_400, timezone.utc).strftime("%Y-%m-%d")


def num(x: float) -> str:
    """Units as the page prints them (one decimal)."""
    return f"{x:.1f}"


class _Frame:
    """Maps days and units to pixels inside the plot area."""

    def __init__(self, d0: int, d1: int, ymax: float) -> None:
        self.d0, self.d1 = d0, max(d1, d0 + 1)
        self.ymax = ymax if ymax > 0 else 1.0

    def x(self, day: float) -> float:
        return round(LEFT + (day - self.d0) / (self.d1 - self.d0) * (W - LEFT - RIGHT), 1)

    def y(self, units: float) -> float:
        return round(H - BOTTOM - units / self.ymax * (H - TOP - BOTTOM), 1)

    def axes(self, y_label: str, x_days: Sequence[int]) -> list[str]:
        out = [f'<line class="axis" x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}"/>']
        for v in (0.0, self.ymax / 2, self.ymax):
            out.append(f'<line class="grid" x1="{LEFT}" y1="{self.y(v)}" x2="{W - RIGHT}" y2="{self.y(v)}"/>'
                       f'<text class="tick" x="{LEFT - 4}" y="{self.y(v) + 4}" text-anchor="end">{_tick(v)}</text>')
        for i, d in enumerate(x_days):
            anchor = "start" if i == 0 else "end" if i == len(x_days) - 1 else "middle"
            out.append(f'<text class="tick" x="{self.x(d)}" y="{H - BOTTOM + 16}" text-anchor="{anchor}">{date(d)}</text>')
        out.append(f'<text class="label" x="{LEFT}" y="12">{escape(y_label)}</text>')
        return out


def _tick(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 or v == 0 else f"{v:.1f}"


def _points(pts: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x},{y}" for x, y in pts)


def _svg(chart_id: str, label: str, parts: list[str]) -> str:
    return (f'<svg id="{chart_id}" class="chart" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
            f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">' + "".join(parts) + "</svg>")


def fan_chart(daily: Sequence[tuple[int, float]], latest: Forecast, history_days: int = 56) -> str:
    """Units sold per day, then the latest forecast's fan: the mean per day of p10/p50/p90 over 1, 7 and 14 days.

    The horizons are totals; dividing by the days puts them on the same
    scale as the daily history (the table beside the chart has the totals).
    """
    shown = [(d, u) for d, u in daily if d >= latest.day - history_days]
    first = shown[0][0] if shown else latest.day - 1
    end = latest.day + max(HORIZONS) - 1
    rate = {h: tuple(q / h for q in latest.q(h)) for h in HORIZONS}
    ymax = max([u for _, u in shown] + [r[2] for r in rate.values()] + [1.0]) * 1.1
    f = _Frame(first, end, ymax)
    parts = f.axes("units / day", [first, latest.day - 1, end])
    made = f.x(latest.day - 0.5)
    parts.append(f'<line class="now" x1="{made}" y1="{TOP}" x2="{made}" y2="{H - BOTTOM}"/>')
    if shown:
        parts.append(f'<polyline class="sold" data-days="{len(shown)}" points="'
                     + _points([(f.x(d), f.y(u)) for d, u in shown]) + '"/>')
        for d, u in shown:
            parts.append(f'<circle class="sold-day" cx="{f.x(d)}" cy="{f.y(u)}" r="2">'
                         f'<title>{date(d)}: {num(u)} units sold</title></circle>')
    start = (f.x(latest.day - 0.5), f.y(shown[-1][1] if shown else 0.0))
    xs = {h: f.x(latest.day + h - 1) for h in HORIZONS}
    upper = [start] + [(xs[h], f.y(rate[h][2])) for h in HORIZONS]
    lower = [(xs[h], f.y(rate[h][0])) for h in reversed(HORIZONS)] + [start]
    parts.append(f'<polygon class="band" points="{_points(upper + lower)}"/>')
    parts.append('<polyline class="median" points="'
                 + _points([start] + [(xs[h], f.y(rate[h][1])) for h in HORIZONS]) + '"/>')
    for h in HORIZONS:
        p10, p50, p90 = latest.q(h)
        parts.append(f'<circle class="fan-point" data-h="{h}" cx="{xs[h]}" cy="{f.y(rate[h][1])}" r="4">'
                     f'<title>next {h} d: p10 {num(p10)}, p50 {num(p50)}, p90 {num(p90)} units '
                     f'({num(rate[h][1])} / day)</title></circle>')
    return _svg("fan", "units sold per day and the latest forecast", parts)


def outcome_chart(past: Sequence[Outcome], horizon: int) -> str:
    """Past forecasts' p10-p90 band and p50 over ``horizon`` days against the units then sold, by forecast day."""
    if not past:
        return ""
    ymax = max([o.p90 for o in past] + [o.actual for o in past] + [1.0]) * 1.1
    f = _Frame(past[0].day - 1, past[-1].day, ymax)
    parts = f.axes(f"units over {horizon} d", [past[0].day - 1, past[-1].day - 1])
    upper = [(f.x(o.day), f.y(o.p90)) for o in past]
    lower = [(f.x(o.day), f.y(o.p10)) for o in reversed(past)]
    parts.append(f'<polygon class="band" points="{_points(upper + lower)}"/>')
    parts.append(f'<polyline class="median" points="{_points([(f.x(o.day), f.y(o.p50)) for o in past])}"/>')
    for o in past:
        inside = "in" if o.p10 <= o.actual <= o.p90 else "out"
        parts.append(f'<circle class="actual {inside}" cx="{f.x(o.day)}" cy="{f.y(o.actual)}" r="3">'
                     f'<title>made at the close of {date(o.day - 1)}: p50 {num(o.p50)} '
                     f'[{num(o.p10)}, {num(o.p90)}], sold {num(o.actual)}</title></circle>')
    return _svg("past", f"past {horizon}-day forecasts against what then sold", parts)


def stage_strip(runs: Sequence[tuple[int, int, str]], first: int, last: int) -> str:
    """The forecasts' daily stage as coloured runs over ``first``..``last`` (forecast days)."""
    if not runs:
        return ""
    f = _Frame(first, last + 1, 1.0)
    parts = []
    for a, b, stage in runs:
        x0, x1 = f.x(max(a, first)), f.x(b + 1)
        if x1 <= x0:
            continue
        parts.append(f'<rect class="stage-run" data-stage="{escape(stage)}" x="{x0}" y="4" width="{round(x1 - x0, 1)}" '
                     f'height="18" fill="{STAGE_COLOURS.get(stage, "#ccc")}"><title>{escape(stage)}: '
                     f'{date(a - 1)} to {date(b - 1)}</title></rect>')
        if x1 - x0 > 60:
            parts.append(f'<text class="stage-label" x="{x0 + 4}" y="17">{escape(stage)}</text>')
    return (f'<svg id="stages" class="chart" viewBox="0 0 {W} 26" width="{W}" height="26" '
            f'xmlns="http://www.w3.org/2000/svg">' + "".join(parts) + "</svg>")
