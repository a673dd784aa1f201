"""Every setting of trendcast, in one frozen object.

Values come from keyword arguments, then ``TRENDCAST_*`` environment
variables, then a ``.env`` file. Only edge code (CLI, app wiring) reads this;
the pure core takes plain keyword arguments.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """trendcast configuration (env prefix ``TRENDCAST_``)."""

    model_config = SettingsConfigDict(
        env_prefix="TRENDCAST_", env_file=".env", extra="ignore", frozen=True
    )

    # --- Kafka -----------------------------------------------------------
    broker: str | None = Field(
        None,
        description="Kafka bootstrap URL, kafka://host:port[;host:port]. Unset: start the embedded Tansu broker.",
    )
    app_id: str = Field("trendcast", description="Consumer group id and prefix of changelog topics.")
    partitions: int = Field(4, ge=1, le=1024, description="Partitions of every trendcast topic (sources must match).")
    replication: int = Field(1, ge=1, description="Replication factor of topics trendcast creates.")
    topic_clicks: str = Field("clicks", description="Click events (in).")
    topic_carts: str = Field("carts", description="Cart add and remove events (in).")
    topic_orders: str = Field("orders", description="Order lines (in).")
    topic_catalog: str = Field("catalog", description="Product catalog records (in).")
    topic_forecasts: str = Field("forecasts", description="Forecasts (out).")
    topic_alerts: str = Field("stage-alerts", description="Lifecycle stage-change alerts (out).")
    topic_dead_letters: str = Field("dead-letters", description="Rejected input with its reason (out).")
    topic_training_samples: str | None = Field(
        "training-samples",
        description="Training examples (out): each forecast's input when made, its outcomes as horizons close; "
        "what `trendcast retrain` learns from. Empty: not published. Needs calibration on.",
    )
    topic_models: str = Field(
        "models", description="Promoted checkpoints (compacted, one partition): `trendcast retrain` writes, "
        "workers switch to the newest between ticks."
    )
    topic_inventory: str | None = Field(
        None, description="Stock counts (sku, on_hand, ts) (in); unset: alerts carry no stock position."
    )
    connect_timeout_s: float = Field(15.0, gt=0, description="How long to wait for the broker to answer at start, seconds.")
    session_timeout_s: float = Field(
        6.0, gt=0, description="Consumer group session timeout, seconds (joining takes about half of it)."
    )
    group_instance_id: str | None = Field(
        None, min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$",
        description="Static group membership (Kafka KIP-345): a name unique to this worker and stable across its "
        "restarts, such as its pod name. Killed and restarted under it, a worker takes its partitions back "
        "without waiting for its old session to time out; a clean stop does not leave the group, so its "
        "partitions move after session_timeout_s. Unset: dynamic membership.",
    )
    commit_interval_s: float = Field(
        2.8, gt=0, description="How often consumed offsets are committed, seconds (after the changelog writes)."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How clients talk to Kafka; SASL_* need a mechanism, user and password."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism (with SASL_PLAINTEXT or SASL_SSL)."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password; never printed or logged.")
    ssl_cafile: str | None = Field(
        None, description="PEM file of the CA that signed the brokers' certificates (SSL, SASL_SSL); unset: system CAs."
    )
    max_poll_records: int = Field(10_000, ge=1, description="Records per fetch across partitions.")
    fetch_max_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="Bytes per fetch request.")

    # --- windows and event time -------------------------------------------
    history_days: int = Field(56, ge=14, le=366, description="Daily buckets kept per SKU.")
    active_days: int | None = Field(
        None, ge=1, le=366,
        description="A SKU is forecast at every closed day until this many days pass without one of its events "
        "(then once more, with zeros and active=false); unset: history_days. At most history_days.",
    )
    grace_s: float = Field(
        3600.0, ge=0,
        description="How long a day's bucket stays open after its end: a day closes when every active topic of a "
        "partition has passed its end plus this; only events of a closed day are late, seconds.",
    )
    max_ahead_s: float = Field(
        3 * 86_400.0,
        gt=0,
        description="An event further ahead than this of its topic and of every other topic of its partition is "
        "suspect (bad clock?): it waits for the events after it to confirm or refute it, seconds.",
    )
    future_confirm: int = Field(
        100,
        ge=1,
        description="Suspect events in a row on a topic partition that confirm a real jump in event time (a holiday "
        "gap); a normal event after a suspect refutes it (dead-lettered as future).",
    )
    dedup_ids_per_sku: int = Field(16, ge=1, le=256, description="Recent event_ids remembered per SKU for dedup.")
    idle_timeout_s: float = Field(
        10.0, gt=0, description="A partition with no events for this long (wall clock, seconds) is advanced by the timer."
    )
    idle_advance: Literal["peers", "wallclock"] = Field(
        "peers",
        description="How an idle partition's event time advances: to the newest of this worker's partitions, or to the wall clock (live streams only).",
    )
    tick_check_s: float = Field(1.0, gt=0, description="Period of the idle-partition timer, seconds.")
    flush_interval_s: float = Field(
        0.5, gt=0, description="Changelog writes are coalesced per SKU for at most this long, seconds."
    )
    forecaster: Literal["model", "baseline"] = Field(
        "model",
        description="model: the neural network (the baseline stands in per SKU when it cannot load or returns NaN); "
        "baseline: the EWMA baseline only.",
    )
    model_path: str | None = Field(None, description="Model checkpoint file. Unset: the checkpoint shipped with trendcast.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where the model and the text encoder run; auto: cuda when available."
    )
    score_batch_size: int = Field(
        1024, ge=1, le=1_000_000,
        description="SKUs scored per model call in a forecast tick (1024: as fast as 2048 on one CPU thread with the "
        "default network, and each micro-batch holds the event loop half as long).",
    )
    torch_threads: int = Field(
        1, ge=0, le=256, description="Intra-op threads of torch on CPU (1 leaves the other cores to Kafka I/O); 0: torch's default."
    )
    embed_batch_size: int = Field(256, ge=1, le=4096, description="Catalog records embedded per text-encoder call.")
    cold_start: bool = Field(
        False, description="Forecast a SKU that never sold (clicks only) from what the launches nearest by text sold "
        "in their first days, flagged cold_start; off: the model forecasts it from its clicks like any SKU (on the "
        "simulator the model did better: docs/MODEL.md, 'Product text').",
    )
    launch_forecasts: bool = Field(
        True, description="Forecast a SKU whose catalog record names its launch (launched_at) and that has no event yet "
        "from what the launches nearest by text sold from their launch days, at the end of the day before its launch, "
        "flagged cold_start; off: such a SKU gets no forecast before its first event.",
    )

    # --- calibration and stage alerts -------------------------------------------
    calibration: bool = Field(True, description="Correct forecasts online from their outcomes (river); off: publish raw model quantiles.")
    coverage_target: float = Field(0.8, gt=0.5, lt=1.0, description="Nominal coverage of the published p10-p90 interval.")
    aci_step: float = Field(0.1, gt=0, lt=1, description="Adaptive conformal step: how fast interval widths react to misses, per day.")
    bias_fading: float = Field(0.1, gt=0, le=1, description="Weight of the newest day in the bias correction (river EWMean fading factor).")
    drift_threshold: float = Field(
        10.0, gt=0, description="Page-Hinkley threshold on a category's daily mean log error in standard errors (t units)."
    )
    stage_persist_days: int = Field(3, ge=1, le=60, description="Consecutive daily forecasts a new stage must lead before it is confirmed.")
    stage_threshold: float = Field(0.5, ge=0.25, le=1.0, description="Smoothed probability a new stage needs on each of those days.")
    stage_backward_days: int = Field(21, ge=1, le=365, description="Persistence needed to go back to an earlier stage (e.g. decline -> growth), days.")
    stage_dwell_days: int = Field(7, ge=0, le=365, description="Days a confirmed stage is held before another change can start.")
    stage_smoothing: float = Field(0.3, gt=0, le=1, description="Weight of a day's stage probabilities in the smoothed ones (1: no smoothing).")
    stage_evidence: bool = Field(
        True,
        description="A stage must agree with the SKU's sales: decline only on a significant fall (the last 28 days, or the last 14 a day, below 0.9 of the 28 days before) and never while they sell over 1.1 times as much, growth the other way round, introduction only in a SKU's first weeks (models/stage_evidence.py).",
    )
    stage_evidence_z: float = Field(
        2.0, ge=0, le=10,
        description="With the stage evidence, how significant a rise or fall of sales (Poisson z-score of the daily rates) must be before growth or decline is taken up; 0: the ratio alone.",
    )
    lead_time_days: int = Field(7, ge=1, le=14, description="Restocking lead time of alerts' demand, days (1..14).")
    service_level: float = Field(
        0.95, gt=0.5, lt=1, description="Chance the suggested reorder covers lead-time demand (newsvendor)."
    )
    low_cover_days: float = Field(
        7.0, ge=0, description="A growing SKU whose stock lasts fewer days than this gets a low_cover alert."
    )

    # --- edges --------------------------------------------------------------
    store: str = Field("memory://", description="Faust table store (rocksdb:// needs a real Kafka broker).")
    data_dir: str = Field(".trendcast", description="Directory for Faust worker data.")
    metrics_host: str = Field(
        "127.0.0.1", description="Address of /metrics, /healthz and /readyz (0.0.0.0 in a container)."
    )
    metrics_port: int = Field(
        9464, ge=0, le=65535, description="Port of /metrics, /healthz and /readyz; 0 disables them."
    )
    explorer: bool = Field(
        False,
        description="Also serve the forecast explorer at /explore on the metrics port; it reads the forecasts, "
        "stage-alerts and catalog topics from the start (memory: SKUs x explorer_days forecasts).",
    )
    explorer_days: int = Field(
        70, ge=15, le=3650,
        description="Forecasts the explorer keeps per SKU, the newest (about 300 bytes each: 100k SKUs x 70 days is 2 GB).",
    )
    web_host: str = Field("127.0.0.1", description="Address of Faust's own web server.")
    web_port: int = Field(6066, ge=0, le=65535, description="Faust web port; 0 disables the web server.")
    lag_interval_s: float = Field(
        10.0, ge=0, description="How often consumer lag is read from the broker, seconds; 0 disables it."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Least severe log level shown.")
    log_format: Literal["text", "json"] = Field("text", description="Log lines as plain text or one JSON object each.")

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith("kafka://"):
            raise ValueError("must look like kafka://host:port (several: kafka://h1:9092;h2:9092)")
        return value

    @field_validator("stage_backward_days")
    @classmethod
    def _backward_at_least_forward(cls, value: int, info) -> int:
        if value < info.data.get("stage_persist_days", 1):
            raise ValueError("must be >= stage_persist_days (going back needs at least as much evidence)")
        return value

    @model_validator(mode="after")
    def _active_within_history(self) -> "Settings":
        if self.active_days is not None and self.active_days > self.history_days:
            raise ValueError(
                f"active_days ({self.active_days}) is longer than history_days ({self.history_days}): the windows "
                "cannot tell activity that old; lower TRENDCAST_ACTIVE_DAYS or raise TRENDCAST_HISTORY_DAYS"
            )
        return self

    @model_validator(mode="after")
    def _explorer_needs_the_metrics_port(self) -> "Settings":
        if self.explorer and not self.metrics_port:
            raise ValueError("explorer is served on the metrics port, which is 0 (disabled); set "
                             "TRENDCAST_METRICS_PORT or TRENDCAST_EXPLORER=false (or run 'trendcast explore')")
        return self

    @property
    def forecast_active_days(self) -> int:
        """Days without an event after which a SKU stops being forecast (``active_days`` or ``history_days``)."""
        return self.active_days or self.history_days

    @model_validator(mode="after")
    def _security_combination(self) -> "Settings":
        sasl = self.security_protocol.startswith("SASL_")
        if sasl:
            missing = [n for n in ("sasl_mechanism", "sasl_username", "sasl_password") if getattr(self, n) is None]
            if missing:
                raise ValueError(
                    f"security_protocol {self.security_protocol} needs {', '.join(missing)} "
                    f"(set {', '.join('TRENDCAST_' + n.upper() for n in missing)})"
                )
        elif self.sasl_mechanism or self.sasl_username or self.sasl_password:
            raise ValueError(
                f"SASL settings are set but security_protocol is {self.security_protocol}; "
                "set TRENDCAST_SECURITY_PROTOCOL=SASL_SSL (or SASL_PLAINTEXT)"
            )
        if self.ssl_cafile and not self.security_protocol.endswith("SSL"):
            raise ValueError(
                f"ssl_cafile is set but security_protocol is {self.security_protocol}; use SSL or SASL_SSL"
            )
        return self

    @property
    def source_topics(self) -> tuple[str, str, str]:
        """The three event topics, in the order of :data:`stream_app.core.decode.KINDS`."""
        return (self.topic_clicks, self.topic_carts, self.topic_orders)

    @property
    def bootstrap(self) -> str:
        """``host:port[,host:port]`` for plain Kafka clients; needs :attr:`broker` set."""
        if not self.broker:
            raise ValueError("no broker configured")
        return self.broker.removeprefix("kafka://").replace(";", ",")


class SettingsError(ValueError):
    """A setting is wrong; ``str()`` is one line naming it and the fix."""


def load_settings(**overrides: object) -> Settings:
    """Build :class:`Settings`, turning validation errors into one readable line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        if not err["loc"]:  # a rule across several settings: its message names them
            raise SettingsError(f"settings are inconsistent: {err['msg'].removeprefix('Value error, ')}") from None
        name = str(err["loc"][0])
        raise SettingsError(
            f"setting {name} (env TRENDCAST_{name.upper()}) is invalid: {err['msg']}"
        ) from None
