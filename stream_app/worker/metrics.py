"""Prometheus metrics of the worker, declared once with an injectable registry.

Base units, ``_total`` counters, ``_seconds`` histograms, and no per-SKU or
per-user label: label values are bounded sets (topics, reason codes).
Served by :mod:`stream_app.worker.health` with ``/healthz`` and ``/readyz``.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Ingest latency spans sub-millisecond batches to multi-second stalls; the
# default buckets stop at 10 s and are too coarse below 5 ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass
class Metrics:
    """All trendcast metrics, registered on one registry."""

    registry: CollectorRegistry
    events_consumed: Counter
    events_applied: Counter
    events_invalid: Counter
    duplicates: Counter
    redelivered: Counter
    dead_letters: Counter
    forecasts: Counter
    alerts: Counter
    training_samples: Counter
    model_updates: Counter
    skus_tracked: Gauge
    records_waiting: Gauge
    broker_outages: Counter
    broker_unreachable: Gauge
    processing_latency: Histogram
    batch_size: Histogram
    tick_duration: Histogram
    changelog_writes: Counter
    clock_jumps: Counter
    event_time: Gauge
    ready: Gauge
    tick_skus: Histogram
    ticks_running: Gauge
    scoring_seconds: Histogram
    model_fallbacks: Counter
    model_info: Gauge
    build_info: Gauge
    consumer_lag: Gauge
    consumer_lag_seconds: Gauge
    event_time_lag: Gauge
    lag_probe_errors: Counter
    forecast_wape: Gauge
    interval_coverage: Gauge
    drift_detections: Counter
    outcomes: Counter
    outcome_abs_error: Counter
    outcome_units: Counter
    outcome_covered: Counter
    embeddings: Counter
    cold_starts: Counter
    state_records_rejected: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> "Metrics":
        """Declare every metric on ``registry`` (a fresh one when ``None``)."""
        r = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=r,
            events_consumed=Counter(
                "trendcast_events_consumed", "Source events read, by topic.", ["topic"], registry=r
            ),
            events_applied=Counter(
                "trendcast_events_applied", "Valid, on-time events added to per-SKU windows, by topic.",
                ["topic"], registry=r,
            ),
            events_invalid=Counter(
                "trendcast_events_invalid", "Events rejected to the dead-letter topic, by reason code.",
                ["reason"], registry=r,
            ),
            duplicates=Counter(
                "trendcast_duplicates_dropped", "Events dropped because their event_id was seen recently.",
                registry=r,
            ),
            redelivered=Counter(
                "trendcast_events_redelivered",
                "Events Kafka delivered again (after a crash or rebalance) and were recognised by offset.",
                registry=r,
            ),
            dead_letters=Counter(
                "trendcast_dead_letters_published", "Messages published to the dead-letter topic.", registry=r
            ),
            forecasts=Counter("trendcast_forecasts_published", "Forecast messages published.", registry=r),
            alerts=Counter("trendcast_stage_alerts_published", "Stage-change alerts published.", registry=r),
            training_samples=Counter(
                "trendcast_training_samples_published",
                "Training-samples records published (inputs of forecasts made, outcomes of horizons closed; "
                "up to 1,024 SKUs each).", registry=r,
            ),
            model_updates=Counter(
                "trendcast_model_updates",
                "Promoted checkpoints read from the models topic, by outcome (served, refused: it did not "
                "load or does not fit, the serving model stays).", ["outcome"], registry=r,
            ),
            skus_tracked=Gauge("trendcast_skus_tracked", "SKUs with window state on this worker.", registry=r),
            broker_outages=Counter(
                "trendcast_broker_outages",
                "Times the broker stopped answering the worker (a flush delivered nothing for 5 s, or a metadata "
                "probe timed out); the worker keeps its state and retries.",
                registry=r,
            ),
            broker_unreachable=Gauge(
                "trendcast_broker_unreachable",
                "1 while the broker does not answer the worker (not ready meanwhile), else 0.",
                registry=r,
            ),
            records_waiting=Gauge(
                "trendcast_records_waiting",
                "Source records taken in but not decided yet: their day is too far ahead of the closed days, or "
                "they wait as suspects of a bad clock (their offsets are not committed).",
                registry=r,
            ),
            processing_latency=Histogram(
                "trendcast_processing_latency_seconds",
                "Seconds from the Kafka timestamp of a batch's first record to its events being in the windows, "
                "per batch (time waiting in Kafka included).",
                buckets=LATENCY_BUCKETS, registry=r,
            ),
            batch_size=Histogram(
                "trendcast_batch_events", "Events per processed batch.",
                buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 50000), registry=r,
            ),
            tick_duration=Histogram(
                "trendcast_forecast_tick_duration_seconds",
                "Wall time of one forecast tick (features, model, publishing) on one partition; the partition's "
                "ingest goes on meanwhile.",
                buckets=LATENCY_BUCKETS, registry=r,
            ),
            changelog_writes=Counter(
                "trendcast_changelog_writes", "SKU states written to the windows changelog (coalesced per flush).",
                registry=r,
            ),
            clock_jumps=Counter(
                "trendcast_event_clock_jumps",
                "Confirmed jumps of a partition's event time beyond max_ahead_s.", registry=r,
            ),
            event_time=Gauge(
                "trendcast_event_time_seconds", "Newest event time seen on this worker (Unix seconds).",
                registry=r,
            ),
            ready=Gauge(
                "trendcast_ready",
                "1 once the worker has joined the group, recovered its tables and its configured forecaster "
                "serves (as /readyz), 0 while it (re)starts or rebalances, or when the model did not load.",
                registry=r,
            ),
            tick_skus=Histogram(
                "trendcast_forecast_tick_skus", "SKUs forecast by one forecast tick on one partition.",
                buckets=(1, 10, 100, 500, 1000, 5000, 10000, 50000, 100000), registry=r,
            ),
            ticks_running=Gauge(
                "trendcast_forecast_ticks_running",
                "Partitions whose forecast tick is in progress on this worker (at most one each).", registry=r,
            ),
            scoring_seconds=Histogram(
                "trendcast_scoring_seconds", "Wall time of scoring one micro-batch with the model, by device.",
                ["device"], buckets=LATENCY_BUCKETS, registry=r,
            ),
            model_fallbacks=Counter(
                "trendcast_model_fallbacks",
                "Forecasts (SKUs) made by the baseline instead of the model, by reason (not_loaded, error, nan).",
                ["reason"], registry=r,
            ),
            model_info=Gauge(
                "trendcast_model_info", "The forecaster in use (value 1): name, version and device.",
                ["name", "version", "device"], registry=r,
            ),
            build_info=Gauge(
                "trendcast_build_info", "trendcast build (value 1): package, Python and Faust versions.",
                ["version", "python", "faust"], registry=r,
            ),
            # Bounded: one series per assigned source partition, not per SKU.
            consumer_lag=Gauge(
                "trendcast_consumer_lag_messages",
                "Messages behind: the broker's end offset minus the group's committed offset, per assigned "
                "source partition. The embedded broker under-reports end offsets (lag reads low there).",
                ["topic", "partition"], registry=r,
            ),
            consumer_lag_seconds=Gauge(
                "trendcast_consumer_lag_seconds",
                "Seconds of Kafka record timestamp between the newest record of the partition and the newest "
                "the worker applied (0 when caught up), per assigned source partition. Reads low on the embedded "
                "broker, as the message lag.",
                ["topic", "partition"], registry=r,
            ),
            event_time_lag=Gauge(
                "trendcast_event_time_lag_seconds",
                "Wall clock minus the partition's event time (the newest event time seen on it), per assigned "
                "partition: how stale the newest data is on a live stream; a replay reads its age.",
                ["partition"], registry=r,
            ),
            lag_probe_errors=Counter(
                "trendcast_consumer_lag_probe_errors",
                "Failed reads of end or committed offsets or record timestamps (the lag gauges keep their last value).",
                registry=r,
            ),
            outcomes=Counter(
                "trendcast_calibration_outcomes", "Forecasts paired with their realised units, by horizon (days).",
                ["horizon"], registry=r,
            ),
            outcome_abs_error=Counter(
                "trendcast_outcome_abs_error_units",
                "Sum of |actual - published p50| over outcomes, units, by horizon: WAPE = rate of this / rate of units.",
                ["horizon"], registry=r,
            ),
            outcome_units=Counter(
                "trendcast_outcome_units", "Sum of realised units over outcomes, by horizon.", ["horizon"], registry=r,
            ),
            outcome_covered=Counter(
                "trendcast_outcome_covered",
                "Outcomes inside the published p10-p90 interval, by horizon: coverage = rate of this / rate of outcomes.",
                ["horizon"], registry=r,
            ),
            forecast_wape=Gauge(
                "trendcast_forecast_wape",
                "WAPE of the published p50 over the outcomes of the last 7 closed days on this worker, by horizon.",
                ["horizon"], registry=r,
            ),
            interval_coverage=Gauge(
                "trendcast_interval_coverage",
                "Share of outcomes of the last 7 closed days inside the published p10-p90 interval, by horizon.",
                ["horizon"], registry=r,
            ),
            embeddings=Counter(
                "trendcast_text_embeddings", "Catalog records embedded by the text encoder.", registry=r,
            ),
            cold_starts=Counter(
                "trendcast_cold_start_forecasts",
                "Forecasts made from the launches nearest by text (flagged cold_start): catalog launches without "
                "events, and SKUs that never sold with TRENDCAST_COLD_START.",
                registry=r,
            ),
            state_records_rejected=Counter(
                "trendcast_state_records_rejected",
                "Learning-table records refused on restore and started fresh instead, by record (calibrator, "
                "pending) and reason (pickle, magic, version, truncated, malformed).",
                ["record", "reason"], registry=r,
            ),
            drift_detections=Counter(
                "trendcast_drift_detections", "Drift detected in a category's forecast errors (calibration reset), by category.",
                ["category"], registry=r,
            ),
        )

    def set_build_info(self) -> None:
        """Set :attr:`build_info` from the installed package versions."""
        import platform
        from importlib.metadata import PackageNotFoundError, version

        def v(name: str) -> str:
            try:
                return version(name)
            except PackageNotFoundError:
                return "unknown"

        self.build_info.labels(v("trendcast"), platform.python_version(), v("faust-streaming")).set(1)
