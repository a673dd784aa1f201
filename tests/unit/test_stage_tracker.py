import numpy as np
import pytest

from models.stage_tracker import NONE, TrackerRules, TrackerState, track

INTRO, GROWTH, MATURITY, DECLINE = range(4)


def onehot(stage: int, p: float) -> np.ndarray:
    """Probabilities with ``stage`` at ``p`` and the rest shared evenly."""
    row = np.full(4, (1 - p) / 3, dtype=np.float32)
    row[stage] = p
    return row


def run_days(rules, rows, start_day=100):
    """Feed one SKU a day at a time; return the step of each day."""
    state = TrackerState.empty(1)
    steps = []
    for i, row in enumerate(rows):
        step = track(state, row[None, :], start_day + i, rules)
        state = step.state
        steps.append(step)
    return steps


def test_a_first_stage_needs_evidence_and_is_not_a_change():
    rules = TrackerRules(smoothing=1.0, persist_days=2)
    probs = np.stack([onehot(s, 0.9) for s in (0, 2, 3)])
    first = track(TrackerState.empty(3), probs, 50, rules)
    assert first.state.stage.tolist() == [NONE] * 3
    second = track(first.state, probs, 51, rules)
    assert second.state.stage.tolist() == [0, 2, 3]
    assert not first.changed.any() and not second.changed.any()


def test_a_change_is_confirmed_after_it_persists_with_the_lowest_support_as_confidence():
    rules = TrackerRules(smoothing=1.0, persist_days=3, threshold=0.6, min_dwell_days=0)
    probs = [onehot(GROWTH, 0.9)] * 5 + [onehot(MATURITY, p) for p in (0.7, 0.65, 0.8, 0.9)]
    steps = run_days(rules, probs)
    changed = [i for i, s in enumerate(steps) if s.changed[0]]
    assert changed == [5 + rules.persist_days - 1]
    hit = steps[changed[0]]
    assert hit.previous[0] == GROWTH and hit.state.stage[0] == MATURITY
    assert hit.confidence[0] == pytest.approx(0.65)


def test_weak_or_interrupted_evidence_confirms_nothing():
    rules = TrackerRules(smoothing=1.0, persist_days=3, threshold=0.6, min_dwell_days=0)
    weak = [onehot(GROWTH, 0.9)] + [onehot(MATURITY, 0.55)] * 10  # leads, but below the threshold
    interrupted = [onehot(GROWTH, 0.9)] + [onehot(MATURITY, 0.8), onehot(MATURITY, 0.8), onehot(GROWTH, 0.7)] * 4
    for rows in (weak, interrupted):
        assert not any(s.changed[0] for s in run_days(rules, rows))


def test_going_back_needs_longer_evidence_than_going_forward():
    rules = TrackerRules(smoothing=1.0, persist_days=2, threshold=0.6, backward_persist_days=6, min_dwell_days=0)
    rows = [onehot(DECLINE, 0.9)] * 3 + [onehot(GROWTH, 0.9)] * 8
    changed = [i for i, s in enumerate(run_days(rules, rows)) if s.changed[0]]
    assert changed == [3 + rules.backward_persist_days - 1]


def test_a_new_stage_is_held_for_the_dwell_time():
    rules = TrackerRules(smoothing=1.0, persist_days=1, threshold=0.6, backward_persist_days=1, min_dwell_days=5)
    rows = [onehot(GROWTH, 0.9)] * 6 + [onehot(MATURITY, 0.9)] + [onehot(GROWTH, 0.9)] * 6
    changed = [i for i, s in enumerate(run_days(rules, rows)) if s.changed[0]]
    assert changed == [6, 6 + rules.min_dwell_days]


def test_noisy_probabilities_around_a_boundary_do_not_flap():
    """Raw argmax stages flip dozens of times; tracked stages follow the one real change, soon after it."""
    days, boundary, skus = 120, 60, 50
    rng = np.random.default_rng(5)
    truth = np.where(np.arange(days) < boundary, GROWTH, MATURITY)
    # Each day the true stage scores highest, its neighbour second, plus noise:
    # the argmax is right about three days in four.
    logits = np.zeros((days, skus, 4))
    logits[np.arange(days), :, truth] = 1.2
    logits[np.arange(days), :, 3 - truth] = 0.6
    logits += rng.normal(0, 0.5, size=logits.shape)
    probs = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    raw_flips = (np.diff(probs.argmax(axis=2), axis=0) != 0).sum(axis=0)

    state, changes, to_maturity = TrackerState.empty(skus), np.zeros(skus, int), np.full(skus, -1)
    # The true stage's probability here averages ~0.47: rules with a 0.4 threshold (the defaults ask 0.5,
    # tuned on the model's sharper probabilities) test the persistence and hysteresis, not the level.
    rules = TrackerRules(smoothing=0.4, threshold=0.4)
    for d in range(days):
        step = track(state, probs[d], 100 + d, rules)
        state = step.state
        changes += step.changed
        to_maturity[step.changed & (state.stage == MATURITY)] = d
    assert np.median(raw_flips) > 20
    assert (state.stage == MATURITY).all()
    assert changes.max() <= 2 and changes.mean() <= 1.3   # 2: an early move, never undone
    on_time = (to_maturity >= boundary) & (to_maturity <= boundary + 14)
    assert on_time.mean() >= 0.9
    assert np.median(to_maturity - boundary) <= 7


def test_skus_are_independent_in_one_call():
    rules = TrackerRules(smoothing=1.0, persist_days=2, min_dwell_days=0)
    state = TrackerState.empty(2)
    for day in (9, 10):
        state = track(state, np.stack([onehot(INTRO, 0.9)] * 2), day, rules).state
    for day in (11, 12):
        step = track(state, np.stack([onehot(GROWTH, 0.9), onehot(INTRO, 0.9)]), day, rules)
        state = step.state
    assert step.changed.tolist() == [True, False]
    assert state.stage.tolist() == [GROWTH, INTRO]


@pytest.mark.parametrize("kwargs", [dict(persist_days=0), dict(smoothing=0.0), dict(smoothing=1.5), dict(persist_days=5, backward_persist_days=3),
                                    dict(threshold=0.2), dict(min_dwell_days=-1)])
def test_bad_rules_are_refused(kwargs):
    with pytest.raises(ValueError):
        TrackerRules(**kwargs)


def test_sales_veto_a_stage_they_contradict_and_end_one_they_no_longer_allow():
    """A SKU selling more than before is never taken into decline, and leaves it the day its sales turn up."""
    from models.stage_evidence import DECLINE, MATURITY, EvidenceRules, allowed_stages

    rules, ev = TrackerRules(), EvidenceRules()
    falling = np.r_[np.full(28, 10.0), np.full(28, 5.0)][None, :]
    growing = np.r_[np.full(28, 5.0), np.full(28, 10.0)][None, :]
    decline = np.array([[0.02, 0.02, 0.06, 0.9]], dtype=np.float32)
    state = TrackerState.empty(1)
    for d in range(10):  # the head says decline, the sales say growth: never decline
        step = track(state, decline, 100 + d, rules, allowed_stages(growing, np.array([300]), ev))
        state = step.state
        assert state.stage[0] != DECLINE
    assert state.stage[0] == MATURITY
    state = TrackerState.empty(1)
    for d in range(10):
        state = track(state, decline, 200 + d, rules, allowed_stages(falling, np.array([300]), ev)).state
    assert state.stage[0] == DECLINE
    step = track(state, decline, 210, rules, allowed_stages(growing, np.array([300]), ev))
    assert step.changed[0] and step.previous[0] == DECLINE and step.state.stage[0] == MATURITY
    assert 0 < step.confidence[0] <= 1


def test_introduction_is_for_young_skus_only():
    from models.stage_evidence import INTRODUCTION, EvidenceRules, allowed_stages

    intro = np.array([[0.9, 0.04, 0.04, 0.02]], dtype=np.float32)
    flat = np.full((1, 56), 3.0)
    state = TrackerState.empty(1)
    for d in range(10):
        state = track(state, intro, 100 + d, TrackerRules(), allowed_stages(flat, np.array([200]), EvidenceRules())).state
    assert state.stage[0] not in (INTRODUCTION, NONE)
    state = TrackerState.empty(1)
    for d in range(10):
        state = track(state, intro, 100 + d, TrackerRules(), allowed_stages(flat, np.array([5 + d]), EvidenceRules())).state
    assert state.stage[0] == INTRODUCTION


def _track_days(state, probs, first_day, units, age, days=10, ev=None):
    from models.stage_evidence import EvidenceRules, allowed_stages

    steps = []
    for d in range(days):
        step = track(state, probs, first_day + d, TrackerRules(), allowed_stages(units, np.array([age]), ev or EvidenceRules()))
        state = step.state
        steps.append(step)
    return state, steps


DECLINE_PROBS = np.array([[0.02, 0.02, 0.06, 0.9]], dtype=np.float32)


def test_a_decline_stays_inside_the_hysteresis_band():
    """Sales at 0.95 of before may not start a decline but may keep one: no flip to maturity and back."""
    from models.stage_evidence import DECLINE

    falling = np.r_[np.full(28, 10.0), np.full(28, 8.0)][None, :]
    state, _ = _track_days(TrackerState.empty(1), DECLINE_PROBS, 100, falling, 300)
    assert state.stage[0] == DECLINE
    almost_flat = np.r_[np.full(28, 10.0), np.full(28, 9.5)][None, :]  # ratio 0.95: between enter and stay
    state, steps = _track_days(state, DECLINE_PROBS, 110, almost_flat, 300, days=40)
    assert state.stage[0] == DECLINE and not any(s.changed[0] for s in steps)


def test_a_slow_sellers_noise_does_not_start_a_decline_but_a_significant_fall_does():
    """5 units then 3 is a ratio of 0.64 by chance (z −0.7): no decline; 40 then 10 (z −4.2) is one."""
    from models.stage_evidence import DECLINE, MATURITY, rate_change_z

    noisy = np.zeros((1, 56))
    noisy[0, [3, 10, 15, 20, 25]] = 1.0
    noisy[0, [30, 40, 50]] = 1.0
    assert rate_change_z(noisy)[0] > -2
    state, _ = _track_days(TrackerState.empty(1), DECLINE_PROBS, 100, noisy, 300)
    assert state.stage[0] == MATURITY
    falling = np.zeros((1, 56))
    falling[0, :28:7] = 10.0  # 40 units
    falling[0, 30::3] = 1.0  # 9 units
    assert rate_change_z(falling)[0] < -2
    state, steps = _track_days(state, DECLINE_PROBS, 110, falling, 300, days=10)
    assert state.stage[0] == DECLINE and sum(s.changed[0] for s in steps) == 1


def test_a_fall_in_the_last_two_weeks_may_start_a_decline_before_the_28_day_totals_show_it():
    from models.stage_evidence import DECLINE, EvidenceRules, sales_ratio

    recent_fall = np.r_[np.full(42, 100.0), np.full(14, 85.0)][None, :]  # 15 % less a day for two weeks
    assert sales_ratio(recent_fall)[0] > 0.9  # the 28-day totals do not show it yet (0.93)
    state, _ = _track_days(TrackerState.empty(1), DECLINE_PROBS, 100, recent_fall, 300)
    assert state.stage[0] == DECLINE
    state, _ = _track_days(TrackerState.empty(1), DECLINE_PROBS, 100, recent_fall, 300,
                           ev=EvidenceRules(recent_days=0))
    assert state.stage[0] != DECLINE


@pytest.mark.parametrize("kwargs", [dict(exit_z=-1.0), dict(enter_z=-0.5), dict(recent_days=28), dict(recent_days=-1),
                                    dict(decline_enter=1.2), dict(young_days=60)])
def test_bad_evidence_rules_are_refused(kwargs):
    from models.stage_evidence import EvidenceRules

    with pytest.raises(ValueError):
        EvidenceRules(**kwargs)
