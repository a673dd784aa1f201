"""Start a worker process: check the broker, declare topics, run Faust until stopped."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import threading

from stream_app.worker.broker import wait_until_answers
from stream_app.settings import Settings, SettingsError


def all_topics(settings: Settings) -> dict[str, int]:
    """Every topic trendcast reads or writes, with its partition count.

    Declared up front: Tansu auto-creates produced-only topics with its own
    partition count, and the sources must be co-partitioned with the tables.
    """
    names = (
        *settings.source_topics,
        settings.topic_catalog,
        settings.topic_forecasts,
        settings.topic_alerts,
        settings.topic_dead_letters,
        *([settings.topic_inventory] if settings.topic_inventory else []),
        *([settings.topic_training_samples] if settings.topic_training_samples else []),
    )
    # One partition: every worker reads every promoted checkpoint, in the order they were promoted.
    return {**{name: settings.partitions for name in names}, settings.topic_models: 1}


async def prepare_broker(settings: Settings) -> None:
    """Fail fast with one clear line when the broker is unreachable; create missing topics."""
    from stream_app.worker.kafka_io import ensure_topics
    from stream_app.worker.security import aiokafka_kwargs

    client = aiokafka_kwargs(settings)
    await wait_until_answers(settings.bootstrap, settings.connect_timeout_s, client=client)
    await ensure_topics(settings.bootstrap, all_topics(settings), compacted=[settings.topic_models],
                        replication=settings.replication, client=client)


# Collect the youngest generation every 50,000 net allocations instead of 700.
# The hot path allocates short-lived lists, tuples and dicts by the hundred
# thousand per second; at CPython's default the collector ran so often that
# the worker lost ~30% of its throughput to it (`trendcast bench`, 2-core VM).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Move everything allocated so far out of the collector's sight and collect less often.

    Call once the app is built: its import-time and set-up objects live as
    long as the process, so scanning them in every full collection is waste.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _explorer(settings: Settings) -> dict:
    """``{"/explore": the explorer's WSGI app}`` with its feed started, when ``settings.explorer`` is on."""
    if not settings.explorer:
        return {}
    from stream_app.explorer.server import Feed, wsgi_app

    return {"/explore": wsgi_app(Feed(settings).start())}


def run_worker(settings: Settings) -> None:
    """Run one worker in this process until SIGINT/SIGTERM (blocks)."""
    import faust

    from stream_app.worker import health, lag
    from stream_app.worker.app import create_app
    from stream_app.worker.logs import setup_logging

    log_config = setup_logging(settings)
    asyncio.run(prepare_broker(settings))
    worker = create_app(settings)
    worker.metrics.set_build_info()
    state = health.Health()
    health.install(worker, state)
    lag.install(worker)
    tune_gc()
    if settings.metrics_port:
        try:
            health.serve(settings.metrics_host, settings.metrics_port, worker.metrics.registry, state,
                         mounts=_explorer(settings))
        except OSError as exc:
            raise SettingsError(  # reported as one line by the CLI
                f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} ({exc.strerror}); "
                "set TRENDCAST_METRICS_PORT to a free port, or 0 to disable"
            ) from None
    logging.getLogger("trendcast").info(
        "worker starting: group=%s partitions=%d forecaster=%s %s on %s metrics=%s:%d",
        settings.app_id, settings.partitions, *worker.scorer.model, worker.scorer.device,
        settings.metrics_host, settings.metrics_port,
    )
    # The calibration's drift detector comes from river.drift, whose package imports scikit-learn,
    # SciPy and pandas (~1.5 s of the interpreter's lock): import it while the group join waits on the
    # broker (~3 s), not before, where it slowed loading the model (model loaded 4.0 s after start then, 2.3-2.6 s now).
    threading.Thread(target=importlib.import_module, args=("river.drift",), name="preload-river",
                     daemon=True).start()
    faust.Worker(
        worker.app,
        loglevel=settings.log_level.lower(),
        logging_config=log_config,
        quiet=True,
        redirect_stdouts=False,
    ).execute_from_commandline()
