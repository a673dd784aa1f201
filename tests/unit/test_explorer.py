"""The explorer's pure parts: records folded into a SKU's history, and the page rendered from it.

The records are built to the topics' contracts (each is validated against
its JSON Schema), so the view reads what a worker publishes.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from schemas import validate
from stream_app.explorer import page
from stream_app.explorer.view import Explorer

DAY = 86_400_000
D0 = 20_000


def forecast(sku: str, day: int, units: float, *, stage: str = "growth", active: bool = True, scale: float = 1.0):
    """The forecast a worker publishes at the close of ``day - 1`` (``units`` sold that day)."""
    q = {str(h): {"p10": 0.5 * h * scale, "p50": 1.0 * h * scale, "p90": 2.0 * h * scale} for h in (1, 7, 14)}
    if not active:
        q = {h: {"p10": 0.0, "p50": 0.0, "p90": 0.0} for h in q}
    v = {"schema_version": 3, "id": f"{sku}/{day * DAY}/net:1", "sku": sku, "as_of": day * DAY, "active": active,
         "horizons": q, "stage": stage,
         "stage_probs": {"introduction": 0.1, "growth": 0.7, "maturity": 0.1, "decline": 0.1},
         "model": {"name": "net", "version": "1"}, "calibrated": True,
         "observed": {"units_1d": units, "units_7d": units, "units_28d": units, "clicks_7d": 0.0}}
    validate("forecasts", v)
    return v


def alert(sku: str, day: int, previous: str | None, stage: str):
    v = {"schema_version": 2, "id": f"{sku}/{day * DAY}/stage_change", "sku": sku, "as_of": day * DAY,
         "kind": "stage_change", "previous_stage": previous, "stage": stage, "confidence": 0.8,
         "lead_time": {"days": 7, "p50": 7.0, "p90": 14.0},
         "evidence": {"growth_7d": 0.5, "units_7d": 3.0, "units_28d": 9.0, "days_since_first_sale": 4}}
    validate("stage-alerts", v)
    return v


def catalog(sku: str, title: str, description: str = ""):
    v = {"schema_version": 1, "sku": sku, "title": title, "description": description, "category": "toys",
         "price": 9.5, "launched_at": D0 * DAY}
    validate("catalog", v)
    return v


def test_daily_units_fill_quiet_days_with_zero_and_past_forecasts_meet_what_then_sold():
    ex = Explorer()
    sold = {1: 3.0, 2: 1.0, 3: 4.0, 6: 2.0, 7: 5.0, 8: 1.0, 9: 2.0, 10: 6.0, 11: 0.0}  # days 4, 5: no forecast
    for d, u in sold.items():
        ex.add("forecasts", forecast("A", D0 + d + 1, u))
    ex.add("forecasts", forecast("A", D0 + 4, 4.0))  # the same forecast delivered twice counts once
    v = ex.sku("A")
    assert v.daily == [(D0 + d, sold.get(d, 0.0)) for d in range(1, 12)]
    # The forecast made at the close of day 2 covers days 3..9 (7 d): 4 + 0 + 0 + 2 + 5 + 1 + 2.
    by_day = {o.day: o for o in v.outcomes[7]}
    assert by_day[D0 + 3].actual == 14.0 and by_day[D0 + 3].p50 == 7.0
    # Due are the forecasts whose 7 days all closed by day 11: made at the close of days 1..5 (those that exist).
    assert sorted(by_day) == [D0 + 2, D0 + 3, D0 + 4]
    assert [o.actual for o in v.outcomes[1]] == [sold.get(d, 0.0) for d in (2, 3, 4, 7, 8, 9, 10, 11)]
    assert v.latest.day == D0 + 12 and v.latest.q(7) == (3.5, 7.0, 14.0)


def test_a_quiet_sku_sold_nothing_while_event_time_went_on():
    ex = Explorer()
    ex.add("forecasts", forecast("Q", D0 + 2, 4.0))
    ex.add("forecasts", forecast("Q", D0 + 3, 0.0, active=False))
    ex.add("forecasts", forecast("B", D0 + 10, 1.0))  # another SKU: event time reached day 9
    v = ex.sku("Q")
    assert v.daily == [(D0 + d, 4.0 if d == 1 else 0.0) for d in range(1, 10)]
    assert [(o.day, o.actual) for o in v.outcomes[7]] == [(D0 + 2, 0.0)]  # the inactive one is not judged


def test_stage_history_from_forecasts_and_alerts():
    ex = Explorer()
    for d, s in enumerate(["introduction", "introduction", "growth", "growth", "maturity"], 1):
        ex.add("forecasts", forecast("S", D0 + d, 1.0, stage=s))
    ex.add("alerts", alert("S", D0 + 5, "growth", "maturity"))
    ex.add("alerts", alert("S", D0 + 3, None, "growth"))
    ex.add("alerts", alert("S", D0 + 3, None, "growth"))  # a repeat
    v = ex.sku("S")
    assert v.stages == [(D0 + 1, D0 + 2, "introduction"), (D0 + 3, D0 + 4, "growth"), (D0 + 5, D0 + 5, "maturity")]
    assert [(a["previous_stage"], a["stage"]) for a in v.alerts] == [(None, "growth"), ("growth", "maturity")]
    assert [a["as_of"] for a in ex.latest_alerts()] == [(D0 + 5) * DAY, (D0 + 3) * DAY]


def test_malformed_records_are_skipped_and_counted():
    ex = Explorer()
    for kind, value in [("forecasts", b"not json"), ("forecasts", None), ("forecasts", {"sku": "X"}),
                        ("alerts", {**alert("X", D0, None, "growth"), "as_of": "soon"}), ("catalog", [1, 2])]:
        ex.add(kind, value)
    assert ex.counts == {"forecasts": 0, "alerts": 0, "catalog": 0, "skipped": 5}
    assert ex.sku("X") is None


def test_memory_is_bounded_by_keep_days():
    ex = Explorer(keep_days=5)
    for d in range(20):
        ex.add("forecasts", forecast("K", D0 + d, 1.0))
    assert sorted(ex.forecasts["K"]) == list(range(D0 + 15, D0 + 20))


class _Text(HTMLParser):
    """The text a browser shows for the elements with a given id."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: dict[str, str] = {}
        self.open: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        self.open.append(dict(attrs).get("id"))

    def handle_endtag(self, tag):
        self.open.pop()

    def handle_data(self, data):
        for i in filter(None, self.open):
            self.ids[i] = self.ids.get(i, "") + data


def test_the_page_escapes_catalog_text_and_shows_the_latest_numbers():
    ex = Explorer()
    for d in range(1, 20):
        ex.add("forecasts", forecast("<b>&", D0 + d, float(d % 4), scale=1.5))
    ex.add("catalog", catalog("<b>&", '<script>alert("x")</script> Mug', "Tea & <i>coffee</i>"))
    ex.add("alerts", alert("<b>&", D0 + 4, None, "growth"))
    html = page.sku_page(ex.sku("<b>&"), base="/explore", horizon=7, status="s")
    assert "<script>" not in html and "<i>coffee" not in html and "<b>&<" not in html
    text = _Text()
    text.feed(html)
    assert text.ids["catalog"].startswith('<script>alert("x")</script> Mug')
    assert "Tea & <i>coffee</i>" in text.ids["catalog"]
    assert text.ids["sku"] == "<b>&"
    cells = dict(re.findall(r'data-h="7" data-q="(p\d0)">([\d.]+)<', html))
    assert cells == {"p10": "5.2", "p50": "10.5", "p90": "21.0"}  # 0.5, 1 and 2 x 7 days x 1.5
    assert '<svg id="fan"' in html and '<svg id="past"' in html and 'class="band"' in html
    assert 'href="/explore/?sku=%3Cb%3E%26&amp;h=14"' in html  # links keep the mount and quote the SKU
    assert "growth" in text.ids["stage-history"]


def test_a_sku_not_found_says_so_and_suggests_near_ones():
    ex = Explorer()
    for s in ("MUG-1", "MUG-2", "BIG-MUG", "PLATE"):
        ex.add("forecasts", forecast(s, D0 + 1, 1.0))
    assert ex.search("mug") == ["MUG-1", "MUG-2", "BIG-MUG"]
    html = page.not_found_page("mug", ex.search("mug"), base="", status="", topic="forecasts")
    text = _Text()
    text.feed(html)
    assert text.ids["not-found"] == "No forecast for SKU mug has been read from forecasts."
    assert html.count('class="sku"') == 3


@pytest.mark.parametrize("alerts", [[], [alert("A", D0 + 3, None, "growth")]])
def test_front_page_lists_the_latest_alerts(alerts):
    html = page.front_page(alerts, base="", status="read")
    assert ('href="/?sku=A"' in html) == bool(alerts)
    assert ("No alerts read yet" in html) != bool(alerts)


def test_a_worker_serves_the_page_under_explore():
    from prometheus_client import CollectorRegistry

    from stream_app.explorer.server import Feed, wsgi_app
    from stream_app.settings import Settings
    from stream_app.worker.health import Health
    from stream_app.worker.health import wsgi_app as worker_app

    feed = Feed(Settings(broker="kafka://127.0.0.1:9"))  # not started: filled here, as its thread would
    feed.explorer.add("forecasts", forecast("A/1", D0 + 3, 2.0))
    app = worker_app(CollectorRegistry(), Health(), {"/explore": wsgi_app(feed)})

    def get(path, query=""):
        seen = {}
        body = b"".join(app({"PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": "GET"},
                            lambda status, headers: seen.update(status=status)))
        return seen["status"], body.decode()

    status, html = get("/explore/", "sku=A%2F1&h=14")
    assert status == "200 OK" and '<h1 id="sku">A/1</h1>' in html and 'action="/explore/"' in html
    assert get("/explore", "sku=B")[0] == "404 Not Found"  # a SKU not read yet: the not-found page
    assert get("/explore/nothing")[0].startswith("404") and get("/healthz")[0] == "200 OK"
