"""The forecast tick: when a day closes on a partition, learn from its outcomes and forecast what changed.

Pure with respect to Kafka. In order:

1. outcomes: forecasts made 1, 7 and 14 days ago meet the units sold since
   (from the windows, zero for SKUs that sold nothing) and teach the
   partition's calibrator; drift detections are reported;
2. forecasts: the SKUs with new events are scored in micro-batches, their
   quantiles calibrated, the raw ones kept until their outcomes close;
3. stages: the stage tracker turns the day's stage probabilities into
   confirmed stages; a confirmed change becomes one ``stage-alerts`` message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import orjson

from models.calibration import Calibrator
from models.interface import HORIZONS, STAGES, Forecaster
from models.stage_tracker import NONE, TrackerRules, track
from stream_app.features import features_from_batch
from stream_app.ingest import Ingestor
from stream_app.outcomes import Made, Pending, realised
from stream_app.windows import DAY_MS, NO_DAY, UNITS, StateBatch

LEAD_TIME_INDEX = HORIZONS.index(7)  # lead time of stage alerts: the 7-day total
SCHEMA_VERSION = 1
UNKNOWN_GROUP = "unknown"


@dataclass
class TickTools:
    """What a tick needs besides the windows: the forecaster and one partition's learning state.

    ``groups`` maps SKU keys to calibration groups (categories);
    ``calibrator`` and ``pending`` belong to the partition being ticked
    (``None``: no calibration).
    """

    forecaster: Forecaster
    rules: TrackerRules = field(default_factory=TrackerRules)
    calibrator: Calibrator | None = None
    pending: Pending | None = None
    groups: Callable[[list[bytes]], np.ndarray] | None = None
    batch_size: int = 4096


@dataclass
class OutcomeStats:
    """Scores of the published forecasts of one horizon whose outcomes closed in a tick.

    ``abs_error``: Σ|actual − p50| (units); ``abs_error_raw``: the same for
    the uncalibrated p50; ``units``: Σ actual; ``covered``: outcomes inside
    p10–p90; ``n``: outcomes.
    """

    abs_error: float = 0.0
    abs_error_raw: float = 0.0
    units: float = 0.0
    covered: int = 0
    n: int = 0


@dataclass
class TickResult:
    """Encoded messages of one tick, as ``(key, value)`` pairs, and what it learned."""

    forecasts: list[tuple[bytes, bytes]] = field(default_factory=list)
    alerts: list[tuple[bytes, bytes]] = field(default_factory=list)
    skus: int = 0
    outcomes: dict[int, OutcomeStats] = field(default_factory=dict)  # by horizon (days)
    drifted: list[str] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)  # days whose pending forecasts are all judged


def learn_outcomes(ingestor: Ingestor, as_of_day: int, tools: TickTools, out: TickResult) -> None:
    """Pair the forecasts whose horizon ended with ``as_of_day`` with the units sold, and learn from them."""
    pending, cal = tools.pending, tools.calibrator
    if pending is None or cal is None:
        return
    store, spec = ingestor.store, ingestor.spec
    for h_idx, made_day, made in pending.due(as_of_day):
        rows = [i for i, k in enumerate(made.keys) if k in store]  # SKUs moved away are not ours to judge
        if not rows:
            continue
        batch = StateBatch.from_blobs([store[made.keys[i]] for i in rows], spec)
        history, _ = batch.histories(as_of_day)
        actual = realised(history[:, UNITS, :], as_of_day, made_day, HORIZONS[h_idx])
        out.drifted += cal.learn(h_idx, made.quantiles[rows, h_idx], actual, made.groups[rows])
        pub, raw = made.published[rows, h_idx], made.quantiles[rows, h_idx]
        out.outcomes[HORIZONS[h_idx]] = OutcomeStats(
            abs_error=float(np.abs(actual - pub[:, 1]).sum()),
            abs_error_raw=float(np.abs(actual - raw[:, 1]).sum()),
            units=float(actual.sum()),
            covered=int(((actual >= pub[:, 0]) & (actual <= pub[:, 2])).sum()),
            n=len(rows),
        )
    out.expired = pending.expire(as_of_day)


def forecast_messages(
    keys: list[bytes],
    batch: StateBatch,
    as_of_day: int,
    tools: TickTools,
    out: TickResult,
) -> None:
    """Forecast one micro-batch of SKUs, update their tracked stages, append their messages to ``out``."""
    feats = features_from_batch(batch, as_of_day)
    fb = tools.forecaster.predict(feats)
    raw = np.asarray(fb.quantiles, dtype=np.float64)
    groups = tools.groups(keys) if tools.groups else np.full(len(keys), UNKNOWN_GROUP, dtype=object)
    cal = tools.calibrator
    calibrated = cal is not None and cal.ready
    quant = np.round(cal.correct(raw, groups) if calibrated else raw, 4)
    if tools.pending is not None:
        tools.pending.add(as_of_day, Made(list(keys), raw.astype(np.float32), quant.astype(np.float32), groups))

    probs_arr = np.asarray(fb.stage_probs, dtype=np.float64)
    step = track(batch.tracker(), probs_arr, as_of_day, tools.rules)
    batch.set_tracker(step.state)
    tracked = step.state.stage
    shown = np.where(tracked != NONE, tracked, probs_arr.argmax(axis=1)).tolist()
    changed = np.flatnonzero(step.changed).tolist()

    flat = quant.reshape(len(keys), -1).tolist()  # p10, p50, p90 of each horizon in turn
    probs = np.round(probs_arr, 4).tolist()
    as_of = (as_of_day + 1) * DAY_MS
    model = {"name": tools.forecaster.name, "version": tools.forecaster.version}
    h1, h7, h14 = (str(h) for h in HORIZONS)
    s1, s2, s3, s4 = STAGES
    for i, key in enumerate(keys):
        f = flat[i]
        p = probs[i]
        # Literal dicts, not comprehensions: this loop runs once per forecast.
        msg = {
            "schema_version": SCHEMA_VERSION,
            "sku": key.decode(),
            "as_of": as_of,
            "horizons": {
                h1: {"p10": f[0], "p50": f[1], "p90": f[2]},
                h7: {"p10": f[3], "p50": f[4], "p90": f[5]},
                h14: {"p10": f[6], "p50": f[7], "p90": f[8]},
            },
            "stage": STAGES[shown[i]],
            "stage_probs": {s1: p[0], s2: p[1], s3: p[2], s4: p[3]},
            "model": model,
            "calibrated": calibrated,
        }
        out.forecasts.append((key, orjson.dumps(msg)))
    if changed:
        out.alerts += alert_messages(keys, changed, feats.history[:, UNITS, :], feats.days_since_first_sale,
                                     step, quant, as_of)


def alert_messages(keys, rows, units, age, step, quant, as_of) -> list[tuple[bytes, bytes]]:
    """One ``stage-alerts`` message per confirmed change in ``rows``, with its evidence and lead-time demand."""
    li = LEAD_TIME_INDEX
    out = []
    for i in rows:
        u = units[i].astype(np.float64)
        u7, u7_before, u28 = float(u[-7:].sum()), float(u[-14:-7].sum()), float(u[-28:].sum())
        alert = {
            "schema_version": SCHEMA_VERSION,
            "sku": keys[i].decode(),
            "as_of": as_of,
            "previous_stage": STAGES[int(step.previous[i])],
            "stage": STAGES[int(step.state.stage[i])],
            "confidence": round(float(step.confidence[i]), 4),
            "lead_time": {"days": HORIZONS[li], "p50": float(quant[i, li, 1]), "p90": float(quant[i, li, 2])},
            "evidence": {
                "growth_7d": round(u7 / u7_before - 1.0, 4) if u7_before > 0 else None,
                "units_7d": u7,
                "units_28d": u28,
                "days_since_first_sale": int(age[i]) if age[i] >= 0 else None,
            },
        }
        out.append((keys[i], orjson.dumps(alert)))
    return out


def run_tick(ingestor: Ingestor, partition: int, as_of_day: int, tools: TickTools | Forecaster) -> TickResult:
    """Learn from ``as_of_day``'s outcomes on ``partition``, then forecast its SKUs with events due by then.

    Updates the forecast SKUs' windows (last forecast day, tracked stage) in
    the store and marks them dirty so the changelog gets them.
    """
    if not isinstance(tools, TickTools):
        tools = TickTools(tools)
    out = TickResult()
    learn_outcomes(ingestor, as_of_day, tools, out)
    pending = ingestor.pending.get(partition)
    if not pending:
        return out
    keys = sorted(k for k, day in pending.items() if day <= as_of_day)
    store, spec = ingestor.store, ingestor.spec
    dirty = ingestor.dirty.setdefault(partition, set())
    for start in range(0, len(keys), tools.batch_size):
        chunk = keys[start : start + tools.batch_size]
        batch = StateBatch.from_blobs([store[k] for k in chunk], spec)
        forecast_messages(chunk, batch, as_of_day, tools, out)
        nxt = batch.mark_forecast(as_of_day).tolist()
        for k, blob, day in zip(chunk, batch.blobs(), nxt):
            store[k] = blob
            if day == NO_DAY:
                del pending[k]
            else:
                pending[k] = day
        dirty.update(chunk)
    out.skus = len(keys)
    return out
