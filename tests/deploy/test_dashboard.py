"""deploy/grafana: every panel queries metrics the worker really exports, through the provisioned datasource."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from promql import PROMETHEUS_OWN, exported_names, metric_names

from stream_app.worker.metrics import Metrics

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "trendcast.json"


def panels() -> list[dict]:
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def test_metric_names_are_read_from_promql() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, device) (rate(trendcast_scoring_seconds_bucket{device="cuda"}'
            '[$__rate_interval]))) / ignoring(x) sum(up{job="trendcast"}) and on() vector(1)')
    assert metric_names(expr) == {"trendcast_scoring_seconds_bucket", "up"}


def test_every_panel_queries_exported_metrics() -> None:
    exported = exported_names(Metrics.create().registry) | PROMETHEUS_OWN
    used: set[str] = set()
    for p in panels():
        assert p["targets"], f"panel {p['title']!r} has no query"
        for t in p["targets"]:
            names = metric_names(t["expr"])
            assert names, f"panel {p['title']!r}: no metric in {t['expr']!r}"
            unknown = names - exported
            assert not unknown, f"panel {p['title']!r} queries {sorted(unknown)}, which the worker does not export"
            used |= names
    # The list: throughput, lag (messages, seconds, event time), latency, error and coverage, alerts, dead letters, device and model.
    for name in ("trendcast_events_consumed_total", "trendcast_consumer_lag_messages", "trendcast_consumer_lag_seconds",
                 "trendcast_event_time_lag_seconds",
                 "trendcast_processing_latency_seconds_bucket", "trendcast_forecast_wape",
                 "trendcast_interval_coverage", "trendcast_stage_alerts_published_total",
                 "trendcast_events_invalid_total", "trendcast_scoring_seconds_bucket", "trendcast_model_info"):
        assert name in used, f"no panel shows {name}"


def test_panels_use_the_provisioned_datasource_and_do_not_overlap() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"]
    uids = {d["uid"] for d in ds if d["type"] == "prometheus"}
    ids, cells = set(), set()
    for p in json.loads(DASHBOARD.read_text())["panels"]:
        assert p["id"] not in ids
        ids.add(p["id"])
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"panel {p['title']!r} overlaps another"
                cells.add((x, y))
        if p["type"] != "row":
            assert p["datasource"]["uid"] in uids
            assert all(t["datasource"]["uid"] in uids for t in p["targets"])


def test_dashboard_provider_points_where_compose_mounts_the_json() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "trendcast.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["services"]["grafana"]["volumes"] if v.startswith("./")}
    assert mounts[path] == "./deploy/grafana/dashboards"
