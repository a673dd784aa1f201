"""Every metric follows Prometheus naming: prefix, base units, _total counters, bounded labels, help text."""

from __future__ import annotations

from stream_app.worker.metrics import Metrics

# Label names whose values are bounded sets (topics, partitions, reason codes, horizons, categories, devices,
# kinds of state record, outcomes of a model update, and the constant info labels); never an SKU, user, session or event id.
BOUNDED = {"topic", "partition", "reason", "horizon", "category", "device", "name", "version", "python", "faust",
           "record", "outcome"}
UNITS = ("_seconds", "_messages", "_events", "_skus", "_wape", "_coverage", "_info", "_ready", "_tracked")


def families():
    return list(Metrics.create().registry.collect())


def test_names_types_and_help():
    for f in families():
        assert f.name.startswith("trendcast_"), f.name
        assert len(f.documentation) > 10, f"{f.name}: no help text"
        if f.type == "histogram":
            assert f.name.endswith(("_seconds", "_events", "_skus")), f"{f.name}: histogram without a unit"
        if f.type == "gauge":
            assert not f.name.endswith("_total"), f.name
        assert not any(bad in f.name for bad in ("_ms", "milliseconds", "_minutes", "_bytes_kb")), f.name


def test_counters_are_exposed_with_total():
    m = Metrics.create()
    m.forecasts.inc(3)
    assert m.registry.get_sample_value("trendcast_forecasts_published_total") == 3


def test_labels_are_bounded():
    m = Metrics.create()
    for name in dir(m):
        metric = getattr(m, name)
        labels = getattr(metric, "_labelnames", ())
        assert set(labels) <= BOUNDED, f"{name}: {labels}"


def test_the_agreed_names_exist():
    names = {f.name for f in families()}
    assert {
        "trendcast_model_fallbacks", "trendcast_scoring_seconds", "trendcast_model_info",
        "trendcast_forecast_wape", "trendcast_interval_coverage", "trendcast_drift_detections",
        "trendcast_calibration_outcomes", "trendcast_consumer_lag_messages", "trendcast_build_info",
        "trendcast_events_consumed", "trendcast_events_invalid", "trendcast_duplicates_dropped",
        "trendcast_processing_latency_seconds", "trendcast_forecast_tick_duration_seconds",
        "trendcast_forecast_tick_skus", "trendcast_forecasts_published", "trendcast_stage_alerts_published",
        "trendcast_skus_tracked", "trendcast_ready", "trendcast_state_records_rejected",
        "trendcast_forecast_ticks_running",
    } <= names
