"""The calibrator's record: exact round trips, current rules on decode, and every malformed record refused."""

from __future__ import annotations

import pickle
import struct

import numpy as np
import pytest

from models.calibration import CalibrationRules, Calibrator
from models.calibration_codec import REASONS, RecordError, decode, encode
from models.river_state import ewmean_state

H = 3
GROUPS = ("toys", "garden", "shifty")
SHIFT_DAY = 9  # "shifty" sells twice as much from this day: its drift detector fires soon after
STARTS = (0, 4, 12)  # first day each horizon learns (longer horizons' outcomes arrive later)


def stream(days: int, seed: int = 0, n: int = 600):
    """Per day, per horizon that has outcomes: ``(h, quantiles (m, 3), actual (m,), groups (m,))``; units."""
    rng = np.random.default_rng(seed)
    mu = rng.lognormal(2.0, 1.0, n)
    groups = np.array([GROUPS[i % 3] for i in range(n)], dtype=object)
    sd = np.sqrt(mu)
    q = np.stack([np.maximum(mu - 1.28 * sd, 0), mu, mu + 1.28 * sd], axis=1)
    for day in range(days):
        level = np.where((groups == "shifty") & (day >= SHIFT_DAY), 2.0, 1.3)
        y = np.maximum(np.round(level * mu + rng.normal(0, 1.5 * np.sqrt(level * mu))), 0)
        yield [(h, q, y, groups) for h in range(H) if day >= STARTS[h]]


def probe() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(9)
    q = np.sort(rng.gamma(2.0, 4.0, (40, H, 3)), axis=2)
    return q, np.array([*GROUPS, "new"] * 10, dtype=object)


def trained(days: int = 20, rules: CalibrationRules | None = None) -> Calibrator:
    cal = Calibrator(rules, H)
    for day in stream(days):
        for h, q, y, g in day:
            cal.learn(h, q, y, g)
    return cal


def test_a_decoded_calibrator_corrects_and_learns_exactly_as_the_original_every_day():
    """Encoded and decoded before every day of a stream with a drift: no difference, ever, bit for bit."""
    rules = CalibrationRules()
    cal = Calibrator(rules, H)
    q, groups = probe()
    drifts, started_without_days = [], False
    for day in stream(30):
        blob = encode(cal)
        twin = decode(blob, rules, H)
        assert encode(twin) == blob
        np.testing.assert_array_equal(twin.correct(q, groups), cal.correct(q, groups))
        assert twin.ready == cal.ready
        for h, qq, y, g in day:
            fired = cal.learn(h, qq, y, g)
            assert twin.learn(h, qq, y, g) == fired
            drifts += fired
        np.testing.assert_array_equal(twin.correct(q, groups), cal.correct(q, groups))
        assert encode(twin) == encode(cal)
        started_without_days |= any(not hs.days and ewmean_state(hs.bias)[0]
                                    for g in cal.groups.values() for hs in g.horizons)
    assert "shifty" in drifts  # the drift path (detector fired, horizons restarted) went through the codec
    assert started_without_days  # so did a restarted bias of a horizon that has no outcomes yet


def test_a_record_fits_one_changelog_message():
    blob = encode(trained(20))
    assert 1_000 < len(blob) < 200_000  # 4 groups × 3 horizons × 14 days × 200 float16 at most


def test_decode_applies_the_current_rules_not_the_ones_learned_with():
    old = CalibrationRules()
    cal = trained(20, old)
    new = CalibrationRules(coverage=0.95, aci_step=0.05, drift_threshold=3.0, bias_fading=0.5, score_days=5,
                           drift_delta=0.2, drift_warmup_days=3)
    again = decode(encode(cal), new, H)
    assert again.rules is new
    for g in again.groups.values():
        d = g.detector
        assert (d.threshold, d.delta, d.min_instances) == (3.0, 0.2, 3)
        for hs in g.horizons:
            assert hs.bias.fading_factor == 0.5 and len(hs.scores) <= 5
    # 95 % coverage puts the conformal ends further out than 80 % did (where the guard lets them apply)
    wider = [sum(again.groups[n].horizons[h].width(1 - new.coverage)) > sum(g.horizons[h].width(1 - old.coverage))
             for n, g in cal.groups.items() for h in range(H)]
    assert np.mean(wider) > 0.9
    q, groups = probe()
    before, after = cal.correct(q, groups), again.correct(q, groups)
    np.testing.assert_array_equal(after[..., 1], before[..., 1])  # same bias: the learned numbers are kept


class Evil:
    """A pickle that would create ``path`` when loaded."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _patched(blob: bytes, offset: int, value: bytes) -> bytes:
    return blob[:offset] + value + blob[offset + len(value):]


def _one_group() -> bytes:
    cal = Calibrator(horizons=H)
    cal._group("é")  # header 10 bytes, then name length (4) and the name's 2 UTF-8 bytes at offset 14
    return encode(cal)


MALFORMED = {
    "empty": (lambda b: b"", "magic"),
    "garbage": (lambda b: b"\x00\x01garbage" * 10, "magic"),
    "json": (lambda b: b'{"groups": {}}', "magic"),
    "the old pickled calibrator": (lambda b: pickle.dumps(trained(3), protocol=5), "pickle"),
    "a pickle of protocol 2": (lambda b: pickle.dumps({"a": 1}, protocol=2), "pickle"),
    "a future version": (lambda b: _patched(b, 4, b"\x04"), "version"),
    "the version without the guard": (lambda b: _patched(b, 4, b"\x02"), "version"),
    "the version with half-width scores": (lambda b: _patched(b, 4, b"\x01"), "version"),
    "version 0": (lambda b: _patched(b, 4, b"\x00"), "version"),
    "another horizon count": (lambda b: _patched(b, 5, b"\x07"), "malformed"),
    "a byte too many": (lambda b: b + b"\x00", "malformed"),
    "a group too many": (lambda b: _patched(b, 6, struct.pack("<I", 2)), "truncated"),
    "four billion groups": (lambda b: _patched(b, 6, struct.pack("<I", 2**32 - 1)), "truncated"),
    "a name that is not UTF-8": (lambda b: _patched(b, 14, b"\xff"), "malformed"),
    "a flag that is not 0 or 1": (lambda b: _patched(b, 16, b"\x02"), "malformed"),
    "a NaN spread": (lambda b: _patched(b, 16, b"\x01" + struct.pack("<d", float("nan"))), "malformed"),
    "a negative spread": (lambda b: _patched(b, 16, b"\x01" + struct.pack("<d", -1.0)), "malformed"),
    # the group's numbers start at 16: spread (9 bytes), the detector (49), day level (9), day spread at 83
    "a negative day spread": (lambda b: _patched(b, 83, struct.pack("<d", -1.0)), "malformed"),
    "a NaN day level": (lambda b: _patched(b, 74, b"\x01" + struct.pack("<d", float("nan"))), "malformed"),
    # the first horizon starts at 91: days (4), bias (9), ACI shift (8), then the raw guard loss's flag at 112
    "a negative guard loss": (lambda b: _patched(b, 112, b"\x01" + struct.pack("<d", -1.0)), "malformed"),
    "the same group twice": (lambda b: _patched(b, 6, struct.pack("<I", 2)) + b[10:], "malformed"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_record_is_refused_with_its_reason(name):
    make, reason = MALFORMED[name]
    with pytest.raises(RecordError) as err:
        decode(make(_one_group()), CalibrationRules(), H)
    assert err.value.reason == reason and str(err.value).startswith(reason)


def test_every_truncation_of_a_real_record_is_refused():
    rules = CalibrationRules(score_sample=3)  # every field, few scores: a short record to cut everywhere
    blob = encode(trained(6, rules))
    for cut in range(len(blob)):
        with pytest.raises(RecordError) as err:
            decode(blob[:cut], rules, H)
        assert err.value.reason == ("magic" if cut < 4 else "truncated"), cut


@pytest.mark.parametrize("field", ["shift", "bias", "scores"])
def test_non_finite_learned_numbers_are_refused(field):
    cal = trained(6)
    hs = cal.groups["toys"].horizons[0]
    if field == "shift":
        hs.shift = float("inf")
    elif field == "bias":
        hs.bias.update(float("nan"))
    else:
        hs.scores[-1] = np.full(3, np.nan, np.float16)
    with pytest.raises(RecordError, match="malformed"):
        decode(encode(cal), CalibrationRules(), H)


def test_a_pickle_is_never_loaded(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(RecordError) as err:
        decode(pickle.dumps(Evil(marker)), CalibrationRules(), H)
    assert err.value.reason == "pickle" and not marker.exists()


def test_reasons_are_a_closed_set():
    assert set(REASONS) == {r for _, r in MALFORMED.values()}
    with pytest.raises(ValueError):
        RecordError("because", "an unbounded label value")
