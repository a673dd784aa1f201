"""Metric names in PromQL expressions and in a worker's registry, for the deploy tests."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
             "offset", "inf", "nan"}
# Series Prometheus makes itself for every target.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def metric_names(expr: str) -> set[str]:
    """Names of the series an expression selects (functions, keywords, labels and Grafana variables left out)."""
    s = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)          # strings
    s = re.sub(r"\{[^}]*\}", "", s)                       # label matchers
    s = re.sub(r"\[[^\]]*\]", "", s)                      # ranges and subqueries
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\$\w+", " ", s)                           # $__rate_interval and friends
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        name = m.group(0)
        rest = s[m.end():].lstrip()
        if rest.startswith("(") or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def exported_names(registry: CollectorRegistry) -> set[str]:
    """Every series name the registry can expose, also of labelled metrics with no children yet."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",),
                "summary": ("_count", "_sum", ""), "info": ("_info",)}
    return {family.name + sfx for family in registry.collect() for sfx in suffixes.get(family.type, ("",))}
