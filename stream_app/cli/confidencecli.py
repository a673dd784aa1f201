"""The edge of ``trendcast fit-confidence``: a stage-alert confidence map fitted on validation data, into a checkpoint.

The worker's day loop is replayed offline over validation data
(:mod:`stream_app.data.offline_worker`, the worker's own settings), with the
raw tracker confidence: a simulator run not used for training, each
``stage_change`` alert judged against the simulator's true stage on its day,
or a shop's own history (a UCI Online Retail file), judged against the
hindsight rule over what was read; then an isotonic map
from raw confidence to the share right (:mod:`models.confidence`) is fitted
and, with ``--write``, stored in the checkpoint's metadata. The worker then
publishes calibrated confidences; ``trendcast evaluate`` shows how well
they hold on a test run.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from stream_app.requests import BadRequest, iso
from stream_app.settings import Settings

DAY_MS = 86_400_000

MIN_ALERTS = 50  # fewer judged alerts than this make no map worth publishing


def run_fit_confidence(settings: Settings, data: Path, labels: Path | None, first_day: int, last_day: int,
                       write: bool, source: str = "events", read_until: int | None = None) -> list[str]:
    """Fit the map on the alerts of days ``first_day``..``last_day`` (inclusive); lines to print.

    ``source`` ``events``: a simulator folder judged against its ``labels``
    (its labels.csv); ``uci``: a UCI Online Retail file judged against the
    hindsight rule (:func:`models.labelling.stage_labels`) over the data up
    to ``read_until`` (nothing after it is read: keep the test months out).
    """
    from models.checkpoint import update_meta
    from models.confidence import META_KEY, fit, reliability
    from models.neural import DEFAULT_CHECKPOINT
    from stream_app.evaluation.stages import alert_outcomes
    from stream_app.worker.scoring import build_scorer

    if last_day < first_day:
        raise BadRequest(f"--until {iso(last_day)} is before --from {iso(first_day)}")
    if read_until is not None and read_until < last_day:
        raise BadRequest(f"--read-until {iso(read_until)} is before --until {iso(last_day)}: the alerts' days must be read")
    scorer = build_scorer(settings)
    if scorer.serving != "model":
        raise BadRequest("the model did not load (see the log above): fit the map for a checkpoint that serves")
    raw = dataclasses.replace(scorer, confidence=None)
    judged = (_simulator_alerts if source == "events" else _uci_alerts)(
        settings, raw, data, labels, first_day, last_day, read_until)
    alerts, skus, truth, truth_first_day, described = judged
    conf, right = alert_outcomes(alerts, skus, truth, truth_first_day, first_day, last_day)
    if len(conf) < MIN_ALERTS:
        raise BadRequest(f"only {len(conf)} stage-change alerts with a true stage from {iso(first_day)} to "
                         f"{iso(last_day)}; need {MIN_ALERTS}: use a longer period or a larger simulator run")
    cmap = fit(conf, right, fitted_on=f"{described}, stage changes {iso(first_day)}..{iso(last_day)}")
    before, after = reliability(conf, right), reliability(cmap(conf), right)
    lines = [f"{len(conf):,} stage-change alerts judged, {before['share_right']:.3f} right; expected calibration "
             f"error raw {before['ece']:.3f}, mapped {after['ece']:.3f} (in sample)",
             "map (raw -> share right): " + ", ".join(f"{x:.3f}->{y:.3f}" for x, y in zip(cmap.x, cmap.y))]
    path = Path(settings.model_path) if settings.model_path else DEFAULT_CHECKPOINT
    if write:
        model_id = update_meta(path, {META_KEY: cmap.to_meta()})
        lines.append(f"wrote the map into {path} ({model_id}, weights and id unchanged)")
    else:
        lines.append(f"not written (add --write to store it in {path})")
    return lines


def _simulator_alerts(settings, scorer, data: Path, labels: Path | None, first_day: int, last_day: int,
                      read_until: int | None) -> tuple:
    """``(alerts by day, SKUs, true stages (R, D), their first day, description)`` of a simulator run."""
    from stream_app.data.offline_worker import published
    from stream_app.data.replay import EventFiles
    from stream_app.evaluation.dataset import label_stages

    if not data.is_dir():
        raise BadRequest(f"--data needs a folder of event files (e.g. from 'trendcast simulate'), got {data}")
    labels = labels or data / "labels.csv"
    if not labels.is_file():
        raise BadRequest(f"no such labels file: {labels}")
    until_ms = None if read_until is None else (read_until + 1) * DAY_MS
    try:
        _, alerts = published(settings, EventFiles(data, until_ms=until_ms).rows(), set(range(first_day, last_day + 1)),
                              scorer=scorer)
    except (ValueError, OSError) as exc:
        raise BadRequest(f"{data}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    skus = sorted({a["sku"] for day in alerts.values() for a in day})
    try:
        truth = label_stages(labels, skus, np.arange(first_day, last_day + 1)).T
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return alerts, skus, truth, first_day, _describe(data)


def _uci_alerts(settings, scorer, data: Path, labels: Path | None, first_day: int, last_day: int,
                read_until: int | None) -> tuple:
    """The same for a UCI Online Retail file, the truth the hindsight rule over what was read."""
    import tempfile

    from models.labelling import stage_labels
    from models.layout import UNITS
    from stream_app.data.offline_worker import published
    from stream_app.data.replay import EventFiles
    from stream_app.data.samples import panel_from_series
    from stream_app.evaluation.dataset import daily_series, event_folder

    if labels is not None:
        raise BadRequest("--labels: a UCI file has no stage labels; its alerts are judged by the hindsight rule")
    if not data.is_file():
        raise BadRequest(f"--data with --source uci needs the UCI Online Retail file, got {data}")
    until_ms = None if read_until is None else (read_until + 1) * DAY_MS
    with tempfile.TemporaryDirectory(prefix="trendcast-confidence-") as tmp:
        try:
            folder = event_folder(data, "uci", Path(tmp), until_ms)
            panel = panel_from_series(daily_series(folder))
            _, alerts = published(settings, EventFiles(folder).rows(), set(range(first_day, last_day + 1)),
                                  scorer=scorer)
        except (ValueError, OSError) as exc:
            raise BadRequest(f"{data}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    read = f", read to {iso(read_until)}" if read_until is not None else ""
    return (alerts, list(panel.skus), stage_labels(panel.values[:, UNITS]), panel.first_day,
            f"{data.name} (hindsight rule{read})")


def _describe(data: Path) -> str:
    """The run's name, with its simulator seed and size when its simulation.json says them."""
    try:
        sim = json.loads((data / "simulation.json").read_text())
        return f"simulator seed {sim['seed']} ({sim['n_skus']} SKUs, {sim['days']} days)"
    except (OSError, ValueError, KeyError, TypeError):
        return data.name
