"""The explorer's HTML, rendered on the server from the view's plain data (pure; every text escaped).

``base`` is the path the explorer is served under ("" on its own server,
"/explore" on a worker's metrics port), so links work in both places.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from urllib.parse import quote

from stream_app.explorer.charts import date, fan_chart, num, outcome_chart, stage_strip
from stream_app.explorer.view import HORIZONS, QUANTILES, SkuView

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 24px 24px;color:#222;max-width:1100px}
header{display:flex;gap:16px;align-items:center;border-bottom:1px solid #ddd;padding:10px 0;margin-bottom:12px}
header a{font-weight:600;color:#222;text-decoration:none}
input[name=sku]{width:240px;padding:4px}
table{border-collapse:collapse;margin:6px 0 12px}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.chart{display:block;margin:4px 0}.axis{stroke:#888}.grid{stroke:#eee}.tick,.label{font-size:11px;fill:#666}
.sold{fill:none;stroke:#333;stroke-width:1.5}.sold-day{fill:#333}.band{fill:#6baed6;fill-opacity:.35;stroke:none}
.median{fill:none;stroke:#08519c;stroke-width:2}.fan-point{fill:#08519c}.now{stroke:#999;stroke-dasharray:4 3}
.actual.in{fill:#222}.actual.out{fill:#d62728}.stage-label{font-size:11px;fill:#222}
.muted{color:#777}.card{background:#f7f7f7;padding:8px 12px;border-radius:4px}
"""


def _link(base: str, sku: str, horizon: int | None = None) -> str:
    h = f"&amp;h={horizon}" if horizon else ""
    return f"{base}/?sku={escape(quote(sku, safe=''))}{h}"


def layout(title: str, body: str, *, base: str, query: str = "", status: str = "") -> str:
    """A whole page: the search box on top, ``body`` below, ``status`` (what has been read) at the bottom."""
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<style>{CSS}</style></head><body><header><a href="{base}/">trendcast explorer</a>'
            f'<form action="{base}/" method="get" role="search"><input name="sku" value="{escape(query)}" '
            f'placeholder="SKU, or part of one" autofocus> <button type="submit">Search</button></form></header>'
            f'{body}<p class="muted" id="status">{escape(status)}</p></body></html>')


def status_line(counts: Mapping[str, int], skus: int, topics: Sequence[str]) -> str:
    """What the page is built from: records read per topic and SKUs known."""
    return (f"read {counts['forecasts']:,} forecasts, {counts['alerts']:,} alerts, {counts['catalog']:,} catalog "
            f"records ({counts['skipped']:,} skipped) from {', '.join(topics)}; {skus:,} SKUs")


def _alert_rows(alerts: Sequence[dict], base: str, with_sku: bool) -> str:
    rows = []
    for a in alerts:
        lead = a.get("lead_time") or {}
        sku = (f'<td><a class="sku" href="{_link(base, a["sku"])}">{escape(a["sku"])}</a></td>' if with_sku else "")
        rows.append(f'<tr class="alert">{sku}<td class="day">{date(a["as_of"] // 86_400_000 - 1)}</td>'
                    f'<td class="kind">{escape(str(a.get("kind", "")))}</td>'
                    f'<td class="from">{escape(str(a.get("previous_stage") or "—"))}</td>'
                    f'<td class="to">{escape(str(a["stage"]))}</td>'
                    f'<td class="n">{float(a.get("confidence", 0)):.2f}</td>'
                    f'<td class="n">{num(float(lead.get("p50", 0)))} / {num(float(lead.get("p90", 0)))} '
                    f'({int(lead.get("days", 0))} d)</td></tr>')
    head = ("<th>SKU</th>" if with_sku else "") + ("<th>at the close of</th><th>kind</th><th>from</th><th>to</th>"
                                                   "<th class=n>confidence</th><th class=n>lead-time p50 / p90</th>")
    return f"<tr>{head}</tr>" + "".join(rows)


def front_page(alerts: Sequence[dict], *, base: str, status: str) -> str:
    """Search box and the latest alerts, each linking to its SKU."""
    body = ("<h2>Latest alerts</h2>" + (f'<table id="alerts">{_alert_rows(alerts, base, True)}</table>' if alerts
                                          else '<p class="muted">No alerts read yet.</p>'))
    return layout("trendcast explorer", body, base=base, status=status)


def not_found_page(query: str, suggestions: Sequence[str], *, base: str, status: str, topic: str) -> str:
    """The answer to a search with no exact match: why, and the SKUs that contain the text."""
    body = f'<p id="not-found">No forecast for SKU <b>{escape(query)}</b> has been read from <i>{escape(topic)}</i>.</p>'
    if suggestions:
        body += "<p>SKUs containing it:</p><ul>" + "".join(
            f'<li><a class="sku" href="{_link(base, s)}">{escape(s)}</a></li>' for s in suggestions) + "</ul>"
    return layout(f"{query}: not found", body, base=base, query=query, status=status)


def _catalog(v: SkuView) -> str:
    c = v.catalog
    if not c:
        return '<p class="card muted" id="catalog">No catalog record read for this SKU.</p>'
    price = c.get("price")
    launched = c.get("launched_at")
    facts = [escape(str(c.get("category", ""))), f"price {price:.2f}" if isinstance(price, (int, float)) else "",
             f"launched {date(launched // 86_400_000)}" if isinstance(launched, int) else ""]
    return (f'<div class="card" id="catalog"><b class="title">{escape(str(c["title"]))}</b> '
            f'<span class="muted">{" · ".join(x for x in facts if x)}</span>'
            f'<p class="description">{escape(str(c.get("description", "")))}</p></div>')


def _latest_table(v: SkuView) -> str:
    f = v.latest
    rows = "".join(f'<tr><td>next {h} d</td>' + "".join(
        f'<td class="n" data-h="{h}" data-q="{q}">{num(x)}</td>' for q, x in zip(QUANTILES, f.q(h)))
        + "</tr>" for h in HORIZONS)
    note = "" if f.active else ' <b>inactive</b>: no events lately; all quantiles 0 until the next one.'
    return (f'<p>Made at the close of <b id="as-of">{date(f.day - 1)}</b>, stage <b id="stage">{escape(f.stage)}</b>, '
            f'model {escape(f.model)}{", calibrated" if f.calibrated else ""}.{note}</p>'
            f'<table id="latest"><tr><th>units sold over</th><th class=n>p10</th><th class=n>p50</th>'
            f'<th class=n>p90</th></tr>{rows}</table>')


def _past(v: SkuView, horizon: int, base: str) -> str:
    tabs = " ".join(f"<b>{h} d</b>" if h == horizon else f'<a href="{_link(base, v.sku, h)}">{h} d</a>'
                    for h in HORIZONS)
    past = v.outcomes[horizon]
    head = f"<h2>Past forecasts against what then sold</h2><p>Horizon: {tabs}</p>"
    if not past:
        return head + f'<p class="muted" id="past-none">No {horizon}-day forecast of this SKU has come due yet.</p>'
    inside = sum(o.p10 <= o.actual <= o.p90 for o in past)
    sold = sum(o.actual for o in past)
    wape = f"{sum(abs(o.p50 - o.actual) for o in past) / sold:.0%}" if sold else "n/a"
    rows = "".join(f'<tr class="outcome"><td>{date(o.day - 1)}</td><td class="n">{num(o.p10)}</td>'
                   f'<td class="n">{num(o.p50)}</td><td class="n">{num(o.p90)}</td>'
                   f'<td class="n actual">{num(o.actual)}</td></tr>' for o in reversed(past[-14:]))
    return (head + f'<p id="past-summary" data-n="{len(past)}">{len(past)} forecasts came due: {inside} of them '
            f'({inside / len(past):.0%}) held what sold within p10–p90; WAPE of p50 {wape}.</p>'
            + outcome_chart(past, horizon)
            + f'<table id="past-table"><tr><th>made at the close of</th><th class=n>p10</th><th class=n>p50</th>'
              f'<th class=n>p90</th><th class=n>sold over the next {horizon} d</th></tr>{rows}</table>')


def sku_page(v: SkuView, *, base: str, horizon: int, status: str) -> str:
    """One SKU: catalog text, daily units with the latest forecast's fan, stage history and alerts, past forecasts."""
    first = v.daily[0][0] + 1 if v.daily else v.latest.day
    stages = "".join(f'<tr class="stage-run"><td>{date(a - 1)}</td><td>{date(b - 1)}</td><td>{escape(s)}</td></tr>'
                     for a, b, s in v.stages)
    body = (f'<h1 id="sku">{escape(v.sku)}</h1>{_catalog(v)}<h2>Daily units and the latest forecast</h2>'
            + _latest_table(v) + fan_chart(v.daily, v.latest)
            + '<h2>Stage history</h2><p>Confirmed changes (the alerts topic):</p>'
            + (f'<table id="stage-history">{_alert_rows(v.alerts, base, False)}</table>' if v.alerts
               else '<p class="muted" id="stage-history">No alert for this SKU read yet.</p>')
            + "<p>The stage of each day's forecast:</p>" + stage_strip(v.stages, first, v.latest.day)
            + f'<details><summary>as a table</summary><table id="stage-runs"><tr><th>from</th><th>to</th>'
              f'<th>stage</th></tr>{stages}</table></details>'
            + _past(v, horizon, base))
    return layout(v.sku, body, base=base, query=v.sku, status=status)
