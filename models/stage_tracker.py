"""Stable lifecycle stages from noisy daily stage probabilities: persistence and hysteresis.

A model's daily argmax stage wobbles around every boundary; a restocking bot
acting on each wobble would buy and cancel in turn. The tracker smooths each
SKU's probabilities over days (exponentially), confirms a change only after
the new stage has led the smoothed probabilities with enough weight for
enough consecutive forecasts, and makes going back harder than going forward
(products age introduction → growth → maturity → decline; a revival happens,
but it must prove itself for longer), and holds a new stage for a minimum
dwell time before any other change.

Pure and vectorised: state is a few ``(n,)`` arrays the caller keeps per SKU.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

NONE = -1  # no stage yet (before a SKU's first forecast)


@dataclass(frozen=True)
class TrackerRules:
    """How much evidence a stage change needs.

    ``smoothing``: weight of a day's probabilities in the exponentially
    smoothed ones (1: no smoothing); ``persist_days``: consecutive daily
    forecasts in which the new stage must lead the smoothed probabilities;
    ``threshold``: its minimum smoothed probability in each of them;
    ``backward_persist_days``: the same for a move to an earlier stage
    (e.g. decline → growth); ``min_dwell_days``: days a confirmed stage is
    held before another change can start counting.
    """

    smoothing: float = 0.3
    persist_days: int = 3
    threshold: float = 0.5
    backward_persist_days: int = 21
    min_dwell_days: int = 7

    def __post_init__(self) -> None:
        if self.persist_days < 1 or self.backward_persist_days < self.persist_days:
            raise ValueError("need 1 <= persist_days <= backward_persist_days")
        if not 0.25 <= self.threshold <= 1.0:
            raise ValueError("threshold must be in [0.25, 1] (four stages: below 0.25 nothing can lead)")
        if not 0.0 < self.smoothing <= 1.0:
            raise ValueError("smoothing must be in (0, 1]")
        if self.min_dwell_days < 0:
            raise ValueError("min_dwell_days must be >= 0")


@dataclass(frozen=True)
class TrackerState:
    """Per-SKU tracker state, ``(n,)`` arrays.

    ``stage``: confirmed stage index or :data:`NONE`; ``since``: day it was
    confirmed; ``candidate``: stage gathering evidence or :data:`NONE`;
    ``run``: consecutive days it has led; ``support``: its lowest smoothed
    probability over that run; ``smoothed``: ``(n, 4)`` smoothed stage
    probabilities.
    """

    stage: np.ndarray
    since: np.ndarray
    candidate: np.ndarray
    run: np.ndarray
    support: np.ndarray
    smoothed: np.ndarray

    @classmethod
    def empty(cls, n: int) -> "TrackerState":
        """State of ``n`` SKUs never forecast."""
        none = np.full(n, NONE, dtype=np.int64)
        return cls(none.copy(), np.zeros(n, dtype=np.int64), none.copy(),
                   np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.float32),
                   np.zeros((n, 4), dtype=np.float32))

    def take(self, rows: np.ndarray | list[int]) -> "TrackerState":
        """The state of ``rows`` only."""
        return TrackerState(*(getattr(self, f.name)[rows] for f in fields(self)))


@dataclass(frozen=True)
class StageStep:
    """Result of one day: the new state, which SKUs changed stage, from what, and how sure."""

    state: TrackerState
    changed: np.ndarray
    previous: np.ndarray
    confidence: np.ndarray


def track(state: TrackerState, probs: np.ndarray, day: int | np.ndarray, rules: TrackerRules,
          allowed: tuple[np.ndarray, np.ndarray] | None = None) -> StageStep:
    """Advance the tracker by one daily forecast per SKU.

    ``probs``: ``(n, 4)`` stage probabilities of the day's forecast; ``day``:
    its day index (days since 1970-01-01). A SKU's first stage needs the
    same evidence as a forward change but is not reported as a change
    (``stage`` is :data:`NONE` until then). ``confidence`` of a change is the
    lowest smoothed probability the new stage had over the days that
    confirmed it.

    ``allowed``: ``(enter, stay)``, ``(n, 4)`` bool each, the stages the
    SKU's sales let it take up and keep today
    (:func:`models.stage_evidence.allowed_stages`). Only stages it may take
    up, and the confirmed stage while it may keep it, compete (their
    smoothed probabilities renormalised among them), and a confirmed stage
    the sales no longer allow is left at once, for the leading allowed
    stage, whatever the dwell time.
    """
    probs = np.asarray(probs, dtype=np.float32)
    day = np.broadcast_to(np.asarray(day, dtype=np.int64), state.stage.shape)
    fresh = state.smoothed.sum(axis=1) == 0  # never forecast: nothing to smooth with
    a = rules.smoothing
    smoothed = np.where(fresh[:, None], probs, (1 - a) * state.smoothed + a * probs).astype(np.float32)
    rows = np.arange(len(smoothed))
    competing = smoothed
    if allowed is not None:
        enter, stay = allowed
        # The confirmed stage competes while the sales let it stay, not only while they would let
        # it be taken up: otherwise a decline whose ratio rose from 0.85 to 0.95 loses to maturity
        # and comes back when it dips again (the hysteresis band would be a flapping band).
        held = state.stage != NONE
        keep = np.zeros_like(enter)
        keep[rows[held], state.stage[held]] = stay[rows[held], state.stage[held]]
        enter = enter | keep
        masked = np.where(enter, smoothed, 0.0)
        total = masked.sum(axis=1, keepdims=True)
        # No allowed stage with any probability left (an underflow): the allowed ones, evenly.
        fallback = enter / np.maximum(enter.sum(axis=1, keepdims=True), 1)
        competing = np.where(total > 0, masked / np.where(total > 0, total, 1.0), fallback).astype(np.float32)
    lead = competing.argmax(axis=1)
    p_lead = competing[rows, lead]
    previous = state.stage
    stage = previous.copy()
    since = state.since.copy()
    forced = np.zeros(len(stage), dtype=bool)
    if allowed is not None:
        # The sales contradict the confirmed stage (a "decline" selling more than before): leave it now.
        forced = (stage != NONE) & ~stay[rows, np.maximum(stage, 0)]
        since = np.where(forced, day - rules.min_dwell_days, since)  # not held by the dwell time

    unset = previous == NONE
    dwelling = (day - since < rules.min_dwell_days) & ~unset
    contender = (lead != stage) & (p_lead >= rules.threshold) & ~dwelling
    same = contender & (lead == state.candidate)
    run = np.where(same, state.run + 1, np.where(contender, 1, 0))
    support = np.where(same, np.minimum(state.support, p_lead), np.where(contender, p_lead, 0.0)).astype(np.float32)
    candidate = np.where(contender, lead, NONE)

    backward = (candidate < stage) & ~unset
    confirmed = contender & (run >= np.where(backward, rules.backward_persist_days, rules.persist_days))
    if forced.any():
        candidate = np.where(forced, lead, candidate)
        support = np.where(forced, p_lead, support).astype(np.float32)
        confirmed |= forced
    stage[confirmed] = candidate[confirmed]
    since[confirmed] = day[confirmed]
    changed = confirmed & ~unset
    confidence = np.where(changed, support, 0.0).astype(np.float32)
    candidate[confirmed] = NONE
    run[confirmed] = 0
    support[confirmed] = 0.0
    return StageStep(TrackerState(stage, since, candidate, run, support, smoothed), changed, previous.copy(), confidence)
