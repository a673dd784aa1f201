import io
import pickle

import lz4.frame
import numpy as np
import pytest

from models.calibration_codec import RecordError
from stream_app.core.outcomes import CHUNK_SKUS, Made, Pending, decode, encode, realised


def made(n, seed=0, prefix="S"):
    rng = np.random.default_rng(seed)
    q = np.sort(rng.gamma(2.0, 5.0, size=(n, 3, 3)), axis=2).astype(np.float32)
    return Made([f"{prefix}{i}".encode() for i in range(n)], q, q * 1.1,
                np.array([f"cat{i % 3}" for i in range(n)], dtype=object))


def test_encode_decode_round_trip_in_bounded_chunks():
    m = made(CHUNK_SKUS * 2 + 5)
    chunks = encode(m)
    assert len(chunks) == 3
    assert max(len(c) for c in chunks) < 1_000_000
    back = decode(chunks)
    assert back.keys == m.keys
    np.testing.assert_array_equal(back.quantiles, m.quantiles)
    np.testing.assert_array_equal(back.published, m.published)
    assert back.groups.tolist() == m.groups.tolist()
    assert len(decode([])) == 0


def test_each_horizon_comes_due_on_its_day_and_days_expire_after_the_longest():
    p = Pending((1, 7, 14))
    for day in range(100, 116):
        p.add(day, made(4, seed=day))
    due = p.due(114)
    assert [(h, d) for h, d, _ in due] == [(0, 113), (1, 107), (2, 100)]
    assert p.expire(114) == [100]
    assert min(p.by_day) == 101


def test_ticks_of_one_day_accumulate():
    p = Pending()
    p.add(10, made(3, prefix="a"))
    p.add(10, made(2, prefix="b"))
    assert p.by_day[10].keys == [b"a0", b"a1", b"a2", b"b0", b"b1"]
    assert p.by_day[10].quantiles.shape == (5, 3, 3)


def test_realised_units_are_the_days_after_the_forecast():
    history = np.arange(20, dtype=float)[None, :].repeat(2, axis=0)  # day index as_of-19 .. as_of
    as_of = 500
    # Made at as_of - 7 for 7 days: the last 7 columns.
    assert realised(history, as_of, as_of - 7, 7).tolist() == [sum(range(13, 20))] * 2
    # Made at as_of - 10 for 1 day: only day as_of - 9.
    assert realised(history, as_of, as_of - 10, 1).tolist() == [10.0, 10.0]
    with pytest.raises(ValueError):
        realised(history, as_of, as_of - 25, 7)


class Evil:
    """Pickled, it would create ``path`` when loaded."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return lz4.frame.compress(buf.getvalue())


def _good() -> dict:
    m = made(2)
    return dict(keys=np.array(m.keys, dtype="S"), quantiles=m.quantiles, published=m.published,
                groups=m.groups.astype("U"))


BAD_CHUNKS = {
    "a pickle": (lambda tmp: pickle.dumps(made(2)), "pickle"),
    "garbage": (lambda tmp: b"\x00garbage" * 9, "magic"),
    "a cut LZ4 frame": (lambda tmp: encode(made(50))[0][:-9], "truncated"),
    "LZ4 around garbage": (lambda tmp: lz4.frame.compress(b"garbage" * 9), "malformed"),
    "a claimed 1 TB": (lambda tmp: lz4.frame.LZ4FrameCompressor().begin(source_size=1 << 40), "malformed"),
    "an object array": (lambda tmp: _npz(**{**_good(), "groups": np.array([Evil(tmp / "pwned")] * 2)}), "malformed"),
    "a missing array": (lambda tmp: _npz(**{k: v for k, v in _good().items() if k != "published"}), "malformed"),
    "float64 quantiles": (lambda tmp: _npz(**{**_good(), "quantiles": _good()["quantiles"].astype(float)}), "malformed"),
    "a missing key": (lambda tmp: _npz(**{**_good(), "keys": _good()["keys"][:1]}), "malformed"),
    "two horizons": (lambda tmp: _npz(**{**_good(), "quantiles": _good()["quantiles"][:, :2]}), "malformed"),
}


@pytest.mark.parametrize("name", BAD_CHUNKS)
def test_a_chunk_that_encode_could_not_have_written_is_refused(name, tmp_path):
    make, reason = BAD_CHUNKS[name]
    with pytest.raises(RecordError) as err:
        decode([encode(made(3))[0], make(tmp_path)])
    assert err.value.reason == reason
    assert not (tmp_path / "pwned").exists()  # nothing was unpickled


def test_a_learned_horizon_is_dropped_and_the_others_stay_as_they_were():
    """Memory: a day's 1-day numbers go once learned, the 7-day ones after a week; the 14-day ones stay."""
    from stream_app.core.outcomes import Made, Pending, pack, unpack

    rng = np.random.default_rng(5)
    raw, pub = (unpack(pack(a)) for a in rng.gamma(1.0, 3.0, size=(2, 6, 3, 3)))  # as held
    pending = Pending()
    pending.add(100, Made([b"K%d" % i for i in range(6)], raw, pub, np.array(["g"] * 6, dtype=object)))
    pending.retire(100, 0)
    made = pending.by_day[100]
    assert made.quantiles.shape == (6, 2, 3) and made.horizons == (1, 2)
    for h in (1, 2):
        assert np.array_equal(made.at(h)[0], raw[:, h]) and np.array_equal(made.at(h)[1], pub[:, h])
    pending.retire(100, 1)
    pending.retire(100, 1)  # twice: nothing more to drop
    made = pending.by_day[100]
    assert made.horizons == (2,) and np.array_equal(made.at(2)[0], raw[:, 2])


def test_held_quantiles_keep_zero_and_every_size_of_seller_to_a_four_thousandth_of_one_plus_units():
    """Pending forecasts are held as 2-byte steps on the log1p scale: a SKU selling 0.01 and one selling a
    million units keep their numbers to well under what any calibration error is; zero stays zero."""
    from stream_app.core.outcomes import LOG_STEP, pack, unpack

    units = np.array([0.0, 0.004, 0.01, 0.5, 1.0, 7.3, 140.0, 2_500.5, 1e6, 3e9])
    held = unpack(pack(units))
    assert held[0] == 0.0 and pack(units).dtype == np.uint16
    assert np.all(np.abs(held - units) <= (1 + units) * LOG_STEP / 2 * 1.001)
    assert np.array_equal(unpack(pack(held)), held)  # held again (a restore): the same numbers
    assert unpack(pack(np.array([np.inf, -3.0]))).tolist()[1] == 0.0
