"""The forecast tick: when a day closes on a partition, forecast the SKUs with new events.

Pure with respect to Kafka: it reads windows from the ingestor's store,
calls the forecaster in micro-batches and returns encoded messages for the
``forecasts`` and ``stage-alerts`` topics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import orjson

from models.interface import HORIZONS, STAGES, Forecaster
from stream_app.features import features_from_batch
from stream_app.ingest import Ingestor
from stream_app.windows import DAY_MS, NO_DAY, StateBatch

LEAD_TIME_INDEX = HORIZONS.index(7)  # lead time of stage alerts: the 7-day total
SCHEMA_VERSION = 1


@dataclass
class TickResult:
    """Encoded messages of one tick, as ``(key, value)`` pairs, and timings."""

    forecasts: list[tuple[bytes, bytes]] = field(default_factory=list)
    alerts: list[tuple[bytes, bytes]] = field(default_factory=list)
    skus: int = 0


def forecast_messages(
    keys: list[bytes],
    batch: StateBatch,
    as_of_day: int,
    forecaster: Forecaster,
    out: TickResult,
) -> list[int]:
    """Forecast one micro-batch of SKUs and append their messages to ``out``.

    Returns each SKU's new stage index, for the caller to record in its window.
    """
    feats = features_from_batch(batch, as_of_day)
    previous = batch.stages.tolist()
    fb = forecaster.predict(feats)
    quant = np.round(np.asarray(fb.quantiles, dtype=np.float64), 4)
    q = quant.tolist()
    flat = quant.reshape(len(keys), -1).tolist()  # p10, p50, p90 of each horizon in turn
    probs_arr = np.asarray(fb.stage_probs, dtype=np.float64)
    stage_idx = probs_arr.argmax(axis=1).tolist()
    probs = np.round(probs_arr, 4).tolist()
    units = feats.history[:, 3, :].astype(np.float64)
    u7 = units[:, -7:].sum(axis=1).tolist()
    u7_before = units[:, -14:-7].sum(axis=1).tolist()
    u28 = units[:, -28:].sum(axis=1).tolist()
    age = feats.days_since_first_sale.tolist()
    as_of = (as_of_day + 1) * DAY_MS
    model = {"name": forecaster.name, "version": forecaster.version}
    h1, h7, h14 = (str(h) for h in HORIZONS)
    s1, s2, s3, s4 = STAGES
    li = LEAD_TIME_INDEX
    for i, key in enumerate(keys):
        sku = key.decode()
        si = stage_idx[i]
        qi = q[i]
        f = flat[i]
        p = probs[i]
        # Literal dicts, not comprehensions: this loop runs once per forecast.
        msg = {
            "schema_version": SCHEMA_VERSION,
            "sku": sku,
            "as_of": as_of,
            "horizons": {
                h1: {"p10": f[0], "p50": f[1], "p90": f[2]},
                h7: {"p10": f[3], "p50": f[4], "p90": f[5]},
                h14: {"p10": f[6], "p50": f[7], "p90": f[8]},
            },
            "stage": STAGES[si],
            "stage_probs": {s1: p[0], s2: p[1], s3: p[2], s4: p[3]},
            "model": model,
            "calibrated": False,
        }
        out.forecasts.append((key, orjson.dumps(msg)))
        prev = previous[i]
        if prev >= 0 and prev != si:
            alert = {
                "schema_version": SCHEMA_VERSION,
                "sku": sku,
                "as_of": as_of,
                "previous_stage": STAGES[prev],
                "stage": STAGES[si],
                "confidence": probs[i][si],
                "lead_time": {"days": HORIZONS[li], "p50": qi[li][1], "p90": qi[li][2]},
                "evidence": {
                    "growth_7d": round(u7[i] / u7_before[i] - 1.0, 4) if u7_before[i] > 0 else None,
                    "units_7d": u7[i],
                    "units_28d": u28[i],
                    "days_since_first_sale": int(age[i]) if age[i] >= 0 else None,
                },
            }
            out.alerts.append((key, orjson.dumps(alert)))
    return stage_idx


def run_tick(
    ingestor: Ingestor,
    partition: int,
    as_of_day: int,
    forecaster: Forecaster,
    *,
    batch_size: int = 4096,
) -> TickResult:
    """Forecast the SKUs of ``partition`` with events due by ``as_of_day`` (closed), as of its end.

    Updates the SKUs' windows (last forecast day, stage) in the store and
    marks them dirty so the changelog gets them.
    """
    out = TickResult()
    pending = ingestor.pending.get(partition)
    if not pending:
        return out
    keys = sorted(k for k, day in pending.items() if day <= as_of_day)
    store, spec = ingestor.store, ingestor.spec
    dirty = ingestor.dirty.setdefault(partition, set())
    for start in range(0, len(keys), batch_size):
        chunk = keys[start : start + batch_size]
        batch = StateBatch.from_blobs([store[k] for k in chunk], spec)
        stages = forecast_messages(chunk, batch, as_of_day, forecaster, out)
        nxt = batch.mark_forecast(as_of_day, np.asarray(stages)).tolist()
        for k, blob, day in zip(chunk, batch.blobs(), nxt):
            store[k] = blob
            if day == NO_DAY:
                del pending[k]
            else:
                pending[k] = day
        dirty.update(chunk)
    out.skus = len(keys)
    return out
