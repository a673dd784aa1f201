"""The forecast tick: when a day closes on a partition, learn from its outcomes and forecast what changed.

Pure with respect to Kafka. In order:

1. outcomes: forecasts made 1, 7 and 14 days ago meet the units sold since
   (from the windows, zero for SKUs that sold nothing) and teach the
   partition's calibrator; drift detections are reported;
2. forecasts: every active SKU (an event in the last ``active_days``, and
   any SKU with new events) is scored in micro-batches, events that day or
   not, its quantiles calibrated, the raw ones kept until their outcomes
   close; a SKU that just went inactive gets one last forecast of zeros
   (``active: false``) and no more until its next event, so no consumer
   holds a stale one. With ``cold_start`` (opt-in), a SKU that never sold
   but has a text is forecast from the launches nearest by text that the
   partition's previous tick saw (:mod:`models.launch_prior`), flagged
   ``cold_start``, and not calibrated; so is a SKU with a catalog record
   naming its launch for the next day and no event yet
   (:mod:`stream_app.core.launch_forecasts`);
3. stages: the stage tracker turns the day's stage probabilities into
   confirmed stages; a confirmed change becomes one ``stage-alerts`` message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import orjson

from models.calibration import Calibrator
from models.calibration_groups import calibration_groups
from models.interface import HORIZONS, STAGES, FeatureBatch, Forecaster, nested_horizons
from models.launch_prior import MIN_LAUNCHES, LaunchReference, launches_after, window_launches
from models.restock import lead_time_quantiles
from models.stage_evidence import EvidenceRules, allowed_stages
from models.stage_tracker import NONE, StageStep, TrackerRules, TrackerState, track
from schemas import VERSIONS
from stream_app.core.features import features_from_batch
from stream_app.core.ingest import Ingestor
from stream_app.core.inventory import StockRules, StockView, encode, low_cover, stock_view
from stream_app.core.launch_forecasts import LAUNCH_MODEL, due, launch_step
from stream_app.core.messages import forecast_messages
from stream_app.core.outcomes import Made, Pending, realised
from stream_app.core.samples import encode_inputs, encode_outcomes
from stream_app.core.scorer import Scorer, text_features
from stream_app.core.windows import CLICKS, DAY_MS, NO_DAY, UNITS, StateBatch, WindowSpec

GROWTH = STAGES.index("growth")
ALERT_VERSION = VERSIONS["stage-alerts"]
UNKNOWN_GROUP = "unknown"


@dataclass
class TickTools:
    """What a tick needs besides the windows: the scorer and one partition's learning state.

    ``groups`` maps SKU keys to their catalog categories ("unknown" when
    none; those are grouped by sales level, :mod:`models.calibration_groups`);
    ``active_days``: a SKU is forecast every day until this many days pass
    without an event;
    ``calibrator`` and ``pending`` belong to the partition being ticked
    (``None``: no calibration); ``embeddings`` holds the SKUs' text-embedding
    records (``None``: the model reads no text); ``inventory`` the SKUs'
    stock records (``None``: no inventory topic), updated in place;
    ``evidence``: what a SKU's sales must show for a stage (``None``: the
    stage head alone); ``samples``: also make training-samples records
    (:mod:`stream_app.core.samples`; needs ``pending``); ``cold_start``:
    forecast SKUs that never sold from the launches nearest by text
    (needs ``embeddings``), ``launches`` the ones the partition's previous
    tick saw (``None``: none yet); ``launch_days``: the launch day of
    each of the partition's catalog records that names one (``None``: SKUs
    without events are not forecast), forecast the day before their
    launch (:mod:`stream_app.core.launch_forecasts`) from
    ``catalog_reference``, what such launches of the previous tick sold
    from their launch day.
    """

    scorer: Scorer
    rules: TrackerRules = field(default_factory=TrackerRules)
    calibrator: Calibrator | None = None
    pending: Pending | None = None
    groups: Callable[[list[bytes]], np.ndarray] | None = None
    batch_size: int = 4096
    active_days: int = 56
    embeddings: dict[bytes, bytes] | None = None
    inventory: dict[bytes, bytes] | None = None
    stock: StockRules = field(default_factory=StockRules)
    evidence: EvidenceRules | None = field(default_factory=EvidenceRules)
    samples: bool = False
    cold_start: bool = False
    launches: LaunchReference | None = None
    launch_days: Mapping[bytes, int] | None = None
    catalog_reference: LaunchReference | None = None


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
    inventory: list[bytes] = field(default_factory=list)  # SKUs whose stock record changed (alert marks)
    samples: list[tuple[bytes, bytes]] = field(default_factory=list)  # training-samples records
    launches: LaunchReference | None = None  # first-sale launches in this tick's windows (``cold_start`` only; None: none)
    catalog_reference: LaunchReference | None = None  # the catalog's launches, from their launch day (None: none)
    cold_starts: int = 0  # forecasts made from the launch prior


@dataclass
class OffLoopJob:
    """A step's CPU work, which :func:`tick_steps` hands its caller to run where it likes.

    It reads only what it was given (window states read before it was
    handed out, its own arrays), the model, the text embeddings and the
    partition's calibrator, which nothing but this tick changes; so a
    caller on an event loop runs it on a thread while the loop serves the
    ingest. Everything a job's result changes in the store or the learning
    state is written back on resumption, by :func:`tick_steps` itself.
    :meth:`run` does the work once; a caller that did not run it gets it
    run on resumption.
    """

    fn: Callable[[], Any]
    result: Any = None
    done: bool = False

    def run(self) -> "OffLoopJob":
        """Do the work (once)."""
        if not self.done:
            self.result, self.done = self.fn(), True
        return self


def _realised(keys: list[bytes] | None, blobs: list[bytes], spec: WindowSpec, as_of_day: int, made_day: int,
              horizon: int) -> tuple[np.ndarray, list[tuple[bytes, bytes]]]:
    """Units the SKUs of ``blobs`` sold over the horizon, and their outcomes records (``keys`` None: none)."""
    history, _ = StateBatch.from_blobs(blobs, spec).histories(as_of_day)
    actual = realised(history[:, UNITS, :], as_of_day, made_day, horizon)
    return actual, [] if keys is None else encode_outcomes(keys, made_day, horizon, actual)


def learn_steps(ingestor: Ingestor, as_of_day: int, tools: TickTools, out: TickResult) -> Iterator[OffLoopJob]:
    """Pair the forecasts whose horizon ended with ``as_of_day`` with the units sold, and learn from them.

    Reads ``tools.batch_size`` SKUs' windows at a time, each read an :class:`OffLoopJob`.

    Each horizon's outcomes are learnt in one call, once all its SKUs are
    read: the calibrator takes a day's errors together.
    """
    pending, cal = tools.pending, tools.calibrator
    if pending is None or cal is None:
        return
    store, spec = ingestor.store, ingestor.spec
    step = tools.batch_size
    for h_idx, made_day, made in pending.due(as_of_day):
        pending.retire(made_day, h_idx)  # `made` keeps the horizon for this last use
        rows = [i for i, k in enumerate(made.keys) if k in store]  # SKUs moved away are not ours to judge
        if not rows:
            continue
        parts = []
        for start in range(0, len(rows), step):
            keys = [made.keys[i] for i in rows[start : start + step]]
            blobs = [store[k] for k in keys]
            job = OffLoopJob(partial(_realised, keys if tools.samples else None, blobs, spec, as_of_day, made_day,
                                     HORIZONS[h_idx]))
            yield job
            units, records = job.run().result
            parts.append(units)
            out.samples += records  # encoded in the job, off the event loop
        actual = np.concatenate(parts)
        raw, pub = (a[rows] for a in made.at(h_idx))
        out.drifted += cal.learn(h_idx, raw, actual, made.groups[rows])
        out.outcomes[HORIZONS[h_idx]] = OutcomeStats(
            abs_error=float(np.abs(actual - pub[:, 1]).sum()),
            abs_error_raw=float(np.abs(actual - raw[:, 1]).sum()),
            units=float(actual.sum()),
            covered=int(((actual >= pub[:, 0]) & (actual <= pub[:, 2])).sum()),
            n=len(rows),
        )
    out.expired = pending.expire(as_of_day)


def micro_batch_features(keys: list[bytes], batch: StateBatch, as_of_day: int, tools: TickTools) -> FeatureBatch:
    """The model's input for ``keys`` as of ``as_of_day``: their windows and text embeddings."""
    text = text_features(keys, tools.embeddings)
    return features_from_batch(batch, as_of_day, *(text or ()))


@dataclass
class MicroBatch:
    """One micro-batch forecast: its messages and its SKUs' states as the forecast leaves them.

    ``blobs`` and ``next_days`` (pending days, ``NO_DAY``: none) are the
    states the forecast was made from, marked forecast, their stage tracker
    moved on; ``raw`` and ``quant`` the model's and the published
    quantiles ``(n, horizons, 3)``; ``cold`` the rows forecast from the
    launch prior; ``launches`` the batch's launches (first-sale days, texts,
    totals) and ``earliest`` its earliest first-sale day (None: none);
    ``catalog`` its launches the catalog names (launch days, texts, totals
    from the launch day).
    """

    keys: list[bytes]
    live: np.ndarray
    features: FeatureBatch
    raw: np.ndarray
    quant: np.ndarray
    groups: np.ndarray
    step: StageStep
    lead: np.ndarray
    forecasts: list[tuple[bytes, bytes]]
    blobs: list[bytes]
    next_days: list[int]
    samples: list[tuple[bytes, bytes]]
    cold: np.ndarray
    launches: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    earliest: int | None = None
    catalog: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def forecast_batch(keys: list[bytes], blobs: list[bytes], cats: np.ndarray | None, as_of_day: int,
                   tools: TickTools, spec: WindowSpec) -> MicroBatch:
    """Forecast the SKUs ``keys`` from their states ``blobs``: messages, stages, states to store (pure).

    ``cats``: their catalog categories (None: all unknown), read by the
    caller (the catalog agent changes them).
    A SKU without an event in the last ``tools.active_days`` days gets its
    last forecast, zeros with ``active: false``, and later teaches the
    calibrator nothing.
    """
    n = len(keys)
    batch = StateBatch.from_blobs(blobs, spec)
    live = batch.last_active(as_of_day) > as_of_day - tools.active_days
    feats = micro_batch_features(keys, batch, as_of_day, tools)
    fb, models = tools.scorer.score(feats)
    raw = np.asarray(fb.quantiles, dtype=np.float64)
    if cats is None:
        cats = np.full(n, UNKNOWN_GROUP, dtype=object)
    # SKUs without a category are grouped by sales level, so one drift resets a band, not a partition.
    groups = calibration_groups(cats, feats.history[:, UNITS, -28:].sum(axis=1) / 28.0)
    cal = tools.calibrator
    calibrated = cal is not None and cal.ready
    quant = np.round(nested_horizons(cal.correct(raw, groups) if calibrated else raw), 4)
    cold = np.zeros(n, dtype=bool)
    launches, earliest, catalog = None, None, None
    if (tools.cold_start or tools.launch_days is not None) and tools.embeddings is not None:
        age = feats.days_since_first_sale
        if tools.cold_start:  # first-sale launches: only the cold starts of SKUs with events read them
            ref = tools.launches
            if ref is not None and len(ref) >= MIN_LAUNCHES:
                cold = live & feats.has_text & (age < 0)
                if cold.any():
                    # launch demand replaces the model's answer, calibration too: it learns the model's errors
                    raw[cold] = ref.quantiles(feats.text[cold])
                    quant[cold] = np.round(raw[cold], 4)
            rows, totals = window_launches(feats.history[:, UNITS, :], age, feats.has_text)
            launches = (as_of_day - age[rows], feats.text[rows], totals)
        sold = age >= 0  # the earliest first sale: where a worker's (or a replay's) data begins
        earliest = int((as_of_day - age[sold]).min()) if sold.any() else None
        if tools.launch_days is not None:
            # aligned on the day the catalog names, zeros and all: what a product sells from its launch on
            launched = np.array([tools.launch_days.get(k, as_of_day + 1) for k in keys], dtype=np.int64)
            rows, totals = window_launches(feats.history[:, UNITS, :], as_of_day - launched, feats.has_text)
            catalog = (launched[rows], feats.text[rows], totals)
    quant[~live] = 0.0

    probs_arr = np.asarray(fb.stage_probs, dtype=np.float64)
    allowed = None
    if tools.evidence is not None:
        allowed = allowed_stages(feats.history[:, UNITS, :], feats.days_since_first_sale, tools.evidence)
    step = track(batch.tracker(), probs_arr, as_of_day, tools.rules, allowed)
    tracked = step.state.stage
    shown = np.where(tracked != NONE, tracked, probs_arr.argmax(axis=1)).tolist()

    flat = quant.reshape(n, -1).tolist()  # p10, p50, p90 of each horizon in turn
    cold_rows = set(np.flatnonzero(cold).tolist())
    if cold_rows:
        models = [LAUNCH_MODEL if i in cold_rows else m for i, m in enumerate(models)]
    forecasts = forecast_messages(keys, flat, live.tolist(), shown, np.round(probs_arr, 4).tolist(), models,
                                  calibrated, observed(feats.history), cold_rows, (as_of_day + 1) * DAY_MS)
    lead = lead_time_quantiles(quant, HORIZONS, tools.stock.lead_days)
    blobs, nxt = _marked(batch, step.state, as_of_day)
    # The inputs of the forecasts that will meet an outcome (live ones): the training examples to be.
    samples = encode_inputs(keys, feats, np.flatnonzero(live)) if tools.samples and tools.pending is not None else []
    return MicroBatch(keys, live, feats, raw, quant, groups, step, lead, forecasts, blobs, nxt, samples, cold, launches,
                      earliest, catalog)


def _marked(batch: StateBatch, tracker: TrackerState, as_of_day: int) -> tuple[list[bytes], list[int]]:
    """The states forecast at ``as_of_day``, their stage tracker at ``tracker``: blobs and next pending days."""
    batch.set_tracker(tracker)
    nxt = batch.mark_forecast(as_of_day).tolist()
    return batch.blobs(), nxt


def _restate(mb: MicroBatch, rows: list[int], now: list[bytes], as_of_day: int, spec: WindowSpec) -> None:
    """Mark ``rows`` forecast on their current states ``now`` (ingest changed them meanwhile)."""
    blobs, nxt = _marked(StateBatch.from_blobs([now[i] for i in rows], spec), mb.step.state.take(rows), as_of_day)
    for i, blob, day in zip(rows, blobs, nxt):
        mb.blobs[i], mb.next_days[i] = blob, day


def _record(mb: MicroBatch, as_of_day: int, tools: TickTools, out: TickResult) -> None:
    """Take in a micro-batch's forecast: pending outcomes, stock marks, messages and alerts."""
    keys, live, quant, feats, step = mb.keys, mb.live, mb.quant, mb.features, mb.step
    judged = live & ~mb.cold  # a cold start's errors are the launch prior's, not the model's to calibrate
    if tools.pending is not None and judged.any():
        rows = np.flatnonzero(judged)
        tools.pending.add(as_of_day, Made([keys[i] for i in rows], mb.raw[rows], quant[rows], mb.groups[rows]))
    out.forecasts += mb.forecasts
    out.samples += mb.samples
    out.cold_starts += int(mb.cold.sum())
    rows = [(i, "stage_change") for i in np.flatnonzero(step.changed).tolist()]
    view = None
    if tools.inventory is not None:
        # Read and marked here, not in the job: the inventory agent writes the same records.
        view = stock_view([tools.inventory.get(k) for k in keys], mb.lead, tools.stock)
    if view is not None:
        fire, mark = low_cover(view, (step.state.stage == GROWTH) & live, as_of_day, tools.stock)
        rows += [(int(view.rows[j]), "low_cover") for j in np.flatnonzero(fire)]
        for j in np.flatnonzero(mark != view.alerted):
            key = keys[view.rows[j]]
            tools.inventory[key] = encode(float(view.on_hand[j]), int(view.ts[j]), int(mark[j]))
            out.inventory.append(key)
    if rows:
        as_of = (as_of_day + 1) * DAY_MS
        out.alerts += alert_messages(keys, rows, feats.history[:, UNITS, :], feats.days_since_first_sale,
                                     step, mb.lead, as_of, tools.stock, view, tools.scorer.stage_confidence)


def observed(history: np.ndarray) -> list[dict]:
    """What each SKU's window holds as of the forecast: units sold that day, over 7 and 28 days, clicks over 7.

    ``history``: ``(n, 5, days)`` as in :func:`models.features.build_features`.
    """
    units, clicks = history[:, UNITS, :].astype(np.float64), history[:, CLICKS, :].astype(np.float64)
    cols = zip(units[:, -1].tolist(), units[:, -7:].sum(axis=1).tolist(), units[:, -28:].sum(axis=1).tolist(),
               clicks[:, -7:].sum(axis=1).tolist())
    return [{"units_1d": a, "units_7d": b, "units_28d": c, "clicks_7d": d} for a, b, c, d in cols]


def alert_messages(keys, rows, units, age, step, lead, as_of, stock: StockRules, view: StockView | None,
                   calibrate: Callable[[np.ndarray], np.ndarray] | None = None) -> list[tuple[bytes, bytes]]:
    """One ``stage-alerts`` message per ``(row, kind)``, with its evidence, lead-time demand and stock position.

    A stage change names the previous and the new stage, and its confidence
    through ``calibrate`` (the checkpoint's map: the share of such alerts
    that were right on validation data); a low-cover alert names the current
    stage twice.
    """
    changes = step.confidence if calibrate is None else calibrate(step.confidence)
    where = {} if view is None else {int(r): j for j, r in enumerate(view.rows.tolist())}
    out = []
    for i, kind in rows:
        u = units[i].astype(np.float64)
        u7, u7_before, u28 = float(u[-7:].sum()), float(u[-14:-7].sum()), float(u[-28:].sum())
        si = int(step.state.stage[i])
        stage = STAGES[si]
        # a low-cover alert changes nothing: its confidence is today's smoothed belief in the stage
        conf = changes[i] if kind == "stage_change" else step.state.smoothed[i, si]
        sku = keys[i].decode()
        alert = {
            "schema_version": ALERT_VERSION,
            "id": f"{sku}/{as_of}/{kind}",
            "sku": sku,
            "as_of": as_of,
            "kind": kind,
            "previous_stage": STAGES[int(step.previous[i])] if kind == "stage_change" else stage,
            "stage": stage,
            "confidence": round(float(conf), 4),
            "lead_time": {"days": stock.lead_days, "p50": round(float(lead[i, 1]), 4),
                          "p90": round(float(lead[i, 2]), 4)},
            "evidence": {
                "growth_7d": round(u7 / u7_before - 1.0, 4) if u7_before > 0 else None,
                "units_7d": u7,
                "units_28d": u28,
                "days_since_first_sale": int(age[i]) if age[i] >= 0 else None,
            },
        }
        if i in where:
            alert["inventory"] = view.fields(where[i], stock.service_level)
        out.append((keys[i], orjson.dumps(alert)))
    return out


def run_tick(ingestor: Ingestor, partition: int, as_of_day: int, tools: TickTools | Forecaster) -> TickResult:
    """Learn from ``as_of_day``'s outcomes on ``partition``, then forecast every active SKU as of that day.

    Active: forecast at the previous tick and an event in the last
    ``tools.active_days`` days, or events due (not yet covered by a
    forecast). Updates the forecast SKUs' windows (last forecast day,
    tracked stage) in the store and marks them dirty so the changelog gets
    them. All at once: :func:`tick_steps` is the same tick in steps.
    """
    if not isinstance(tools, TickTools):
        tools = TickTools(Scorer(tools))
    out = TickResult()
    for _ in tick_steps(ingestor, partition, as_of_day, tools, out):
        pass
    return out


def tick_steps(ingestor: Ingestor, partition: int, as_of_day: int, tools: TickTools,
               out: TickResult) -> Iterator[int | OffLoopJob]:
    """:func:`run_tick` one micro-batch of ``tools.batch_size`` SKUs at a time, its results gathered in ``out``.

    Yields each micro-batch's work as an :class:`OffLoopJob` (outcomes
    read, then SKUs forecast: features, model, calibration, stages and
    messages), run on resumption if the caller did not, and after each
    forecast micro-batch the SKUs done so far; so a caller on an event
    loop runs the work on a thread and lets other work run meanwhile, the
    partition's own ingest included: what ingest may apply meanwhile does
    not change a forecast (days up to ``as_of_day`` are closed, late
    events are rejected; later days, at most ``lead_days`` ahead, are not
    read), and a micro-batch writes its SKUs' states as they are when it
    writes them (their next pending day from what they hold then). What
    may not happen in between is another tick of the same partition, its
    state reaching the changelog (a restart reads the newest forecast day
    as the last closed one) or its state being dropped: the worker's
    flushes skip the partition until the tick ends, a second tick waits
    for it, and a revoke keeps the partition whole until the assignment
    (stopping the tick there, with this generator, if it moved).
    ``out.forecasts`` may be taken away between steps (the worker
    publishes each micro-batch's).
    """
    yield from learn_steps(ingestor, as_of_day, tools, out)
    pending = ingestor.pending.setdefault(partition, {})
    tracked = ingestor.tracked.setdefault(partition, set())
    keys = sorted(tracked.union(k for k, day in pending.items() if day <= as_of_day))
    store, spec = ingestor.store, ingestor.spec
    launches, catalog, earliest = [], [], None
    for start in range(0, len(keys), tools.batch_size):
        chunk = keys[start : start + tools.batch_size]
        blobs = [store[k] for k in chunk]
        cats = tools.groups(chunk) if tools.groups else None
        job = OffLoopJob(partial(forecast_batch, chunk, blobs, cats, as_of_day, tools, spec))
        yield job
        mb: MicroBatch = job.run().result
        now = [store[k] for k in chunk]
        changed = [i for i, (a, b) in enumerate(zip(now, blobs)) if a is not b]
        if changed:
            # Ingest applied later days' events to some of these SKUs while the job ran: mark the
            # states as they are now (the features, of closed days, are the same).
            _restate(mb, changed, now, as_of_day, spec)
        _record(mb, as_of_day, tools, out)
        if mb.launches is not None:
            launches.append(mb.launches)
        if mb.catalog is not None:
            catalog.append(mb.catalog)
        if mb.earliest is not None:
            earliest = mb.earliest if earliest is None else min(earliest, mb.earliest)
        for k, blob, day, on in zip(chunk, mb.blobs, mb.next_days, mb.live.tolist()):
            store[k] = blob
            if day == NO_DAY:
                pending.pop(k, None)
            else:
                pending[k] = day
            if on:
                tracked.add(k)
            else:
                tracked.discard(k)
        # Looked up afresh: a flush between two steps takes the dirty sets away.
        ingestor.dirty.setdefault(partition, set()).update(chunk)
        out.skus = start + len(chunk)
        yield out.skus
    if tools.launch_days is not None and tools.embeddings is not None:
        todo = due(tools.launch_days, store, spec, as_of_day)
        job = OffLoopJob(partial(launch_step, todo, tools.embeddings, tools.catalog_reference, as_of_day))
        yield job
        messages, launched, silent = job.run().result
        out.forecasts += messages
        out.cold_starts += launched
        catalog.append(silent)
    if launches and earliest is not None:
        out.launches = launches_after(*(np.concatenate(parts) for parts in zip(*launches)), earliest)
    if catalog and earliest is not None:
        out.catalog_reference = launches_after(*(np.concatenate(parts) for parts in zip(*catalog)), earliest, after=0)
