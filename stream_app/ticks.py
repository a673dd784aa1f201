"""The forecast tick: when a day closes on a partition, forecast the SKUs that changed.

Pure with respect to Kafka: it reads windows from the ingestor's store,
calls the forecaster in micro-batches and returns encoded messages for the
``forecasts`` and ``stage-alerts`` topics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import orjson

from models.interface import HORIZONS, STAGES, Forecaster
from stream_app.features import features_from_windows
from stream_app.ingest import Ingestor
from stream_app.windows import DAY_MS, SkuWindow

LEAD_TIME_INDEX = HORIZONS.index(7)  # lead time of stage alerts: the 7-day total
SCHEMA_VERSION = 1


@dataclass
class TickResult:
    """Encoded messages of one tick, as ``(key, value)`` pairs, and timings."""

    forecasts: list[tuple[bytes, bytes]] = field(default_factory=list)
    alerts: list[tuple[bytes, bytes]] = field(default_factory=list)
    skus: int = 0


def _r(x: float) -> float:
    return round(float(x), 4)


def forecast_messages(
    keys: list[bytes],
    windows: list[SkuWindow],
    as_of_day: int,
    forecaster: Forecaster,
    out: TickResult,
) -> None:
    """Forecast one micro-batch of SKUs, append their messages to ``out`` and mark their windows."""
    feats = features_from_windows(windows, as_of_day)
    fb = forecaster.predict(feats)
    q = np.asarray(fb.quantiles, dtype=np.float64)
    probs = np.asarray(fb.stage_probs, dtype=np.float64)
    stage_idx = probs.argmax(axis=1)
    units = feats.history[:, 3, :]
    u7 = units[:, -7:].sum(axis=1)
    u7_before = units[:, -14:-7].sum(axis=1)
    u28 = units[:, -28:].sum(axis=1)
    as_of = (as_of_day + 1) * DAY_MS
    model = {"name": forecaster.name, "version": forecaster.version}
    days = feats.history.shape[2]
    for i, (key, w) in enumerate(zip(keys, windows)):
        # Forecast a SKU on the days it had events since its last forecast;
        # its newer events (after midnight, before the day closed) wait for
        # their own day. This is what makes a fast replay equal real time.
        since = as_of_day - w.forecast_day
        if not feats.history[i, :, max(0, days - since) :].any():
            continue
        sku = key.decode()
        stage = STAGES[stage_idx[i]]
        msg = {
            "schema_version": SCHEMA_VERSION,
            "sku": sku,
            "as_of": as_of,
            "horizons": {
                str(h): {"p10": _r(q[i, j, 0]), "p50": _r(q[i, j, 1]), "p90": _r(q[i, j, 2])}
                for j, h in enumerate(HORIZONS)
            },
            "stage": stage,
            "stage_probs": {s: _r(probs[i, k]) for k, s in enumerate(STAGES)},
            "model": model,
            "calibrated": False,
        }
        out.forecasts.append((key, orjson.dumps(msg)))
        previous = w.stage
        if previous >= 0 and previous != stage_idx[i]:
            age = feats.days_since_first_sale[i]
            alert = {
                "schema_version": SCHEMA_VERSION,
                "sku": sku,
                "as_of": as_of,
                "previous_stage": STAGES[previous],
                "stage": stage,
                "confidence": _r(probs[i, stage_idx[i]]),
                "lead_time": {
                    "days": HORIZONS[LEAD_TIME_INDEX],
                    "p50": _r(q[i, LEAD_TIME_INDEX, 1]),
                    "p90": _r(q[i, LEAD_TIME_INDEX, 2]),
                },
                "evidence": {
                    "growth_7d": _r(u7[i] / u7_before[i] - 1.0) if u7_before[i] > 0 else None,
                    "units_7d": _r(u7[i]),
                    "units_28d": _r(u28[i]),
                    "days_since_first_sale": int(age) if age >= 0 else None,
                },
            }
            out.alerts.append((key, orjson.dumps(alert)))
        w.mark_forecast(as_of_day, int(stage_idx[i]))


def run_tick(
    ingestor: Ingestor,
    partition: int,
    as_of_day: int,
    forecaster: Forecaster,
    *,
    batch_size: int = 4096,
) -> TickResult:
    """Forecast every SKU of ``partition`` that changed since its last forecast, as of ``as_of_day``.

    Updates the SKUs' windows (last forecast day, stage) in the store and
    marks them dirty so the changelog gets them.
    """
    out = TickResult()
    keys = sorted(ingestor.changed.pop(partition, ()))
    store, spec = ingestor.store, ingestor.spec
    dirty = ingestor.dirty.setdefault(partition, set())
    for start in range(0, len(keys), batch_size):
        chunk = keys[start : start + batch_size]
        windows = [spec.load(store[k]) for k in chunk]
        forecast_messages(chunk, windows, as_of_day, forecaster, out)
        for k, w in zip(chunk, windows):
            store[k] = w.to_bytes()
            if w.changed:
                ingestor.changed.setdefault(partition, set()).add(k)
        dirty.update(chunk)
    out.skus = len(keys)
    return out
