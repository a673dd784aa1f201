"""Continual learning's pure parts: sample records, their join, the models record, champion/challenger."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from models import checkpoint_codec
from models.checkpoint import CheckpointError, SpecMismatch, load_checkpoint
from models.interface import HORIZONS
from models.layout import FEATURE_SPEC_VERSION
from models.neural import DEFAULT_CHECKPOINT
from models.retraining import RetrainRules, retrain, split
from models.calibration_codec import RecordError
from stream_app.core.samples import INPUTS, OUTCOMES, decode, encode_inputs, encode_outcomes
from stream_app.core.scorer import embedding_record
from stream_app.data.stream_samples import SampleJoin
from models.features import build_features


def _features(n: int, day: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    history = rng.poisson(1.0, size=(n, 6, 56)).astype(np.float32)
    return build_features(history, day, np.full(n, day - 30))


def test_inputs_and_outcomes_round_trip_in_chunks():
    keys = [f"s{i:05d}".encode() for i in range(2500)]
    f = _features(2500, 15_000)
    rows = np.arange(0, 2500, 2)  # the live ones
    recs = encode_inputs(keys, f, rows)
    assert len(recs) == 2  # 1,250 SKUs in chunks of 1,024
    assert recs[0][0] == b"in:15000:s00000" and recs[1][0] == b"in:15000:" + keys[rows[1024]]
    got = [decode(v) for _, v in recs]
    assert all(r.kind == INPUTS and r.day == 15_000 and r.spec == FEATURE_SPEC_VERSION for r in got)
    assert sum((r.keys for r in got), []) == [keys[i] for i in rows]
    np.testing.assert_array_equal(np.concatenate([r.history for r in got]), f.history[rows])
    np.testing.assert_array_equal(np.concatenate([r.age for r in got]), f.days_since_first_sale[rows])
    (key, value), = encode_outcomes(keys[:3], 15_000, 7, np.array([0.0, 2.0, 11.0]))
    out = decode(value)
    assert key == b"out:15000:7:s00000" and out.kind == OUTCOMES and out.horizon == 7
    assert out.units.tolist() == [0.0, 2.0, 11.0] and out.keys == keys[:3]


@pytest.mark.parametrize("value, reason", [
    (pickle.dumps({"keys": [b"a"]}), "pickle"),
    (b"not a record", "magic"),
    (encode_outcomes([b"a"], 1, 7, np.ones(1))[0][1][:40], "truncated"),
])
def test_a_record_that_is_not_ours_is_refused_never_unpickled(value, reason):
    with pytest.raises(RecordError) as err:
        decode(value)
    assert err.value.reason == reason


def test_the_join_pairs_inputs_with_outcomes_in_any_order_and_skips_other_specs():
    keys = [b"a", b"b", b"c"]
    f = _features(3, 100)
    join = SampleJoin()
    for _, v in encode_outcomes([b"a", b"b"], 100, 7, np.array([3.0, 0.0])):  # outcomes may come first
        join.add(decode(v))
    for _, v in encode_outcomes([b"a"], 100, 1, np.array([1.0])):
        join.add(decode(v))
    for _, v in encode_inputs(keys, f, np.arange(3)):
        join.add(decode(v))
    other = SampleJoin(spec=FEATURE_SPEC_VERSION + 1)
    other.add(decode(encode_inputs(keys, f, np.arange(3))[0][1]))
    assert other.skipped == 1
    text = np.zeros(384, np.float32)
    text[0] = 1.0
    s = join.samples({b"a": embedding_record("red mug", text)})
    # c has no outcome yet: not a sample; b has only its 7-day one.
    assert s.sku_row.tolist() == [0, 1] and s.origin.tolist() == [100, 100]
    t = s.targets
    assert t[0, HORIZONS.index(1)] == 1.0 and t[0, HORIZONS.index(7)] == 3.0 and np.isnan(t[0, HORIZONS.index(14)])
    assert t[1, HORIZONS.index(7)] == 0.0 and np.isnan(t[1, HORIZONS.index(1)])
    np.testing.assert_array_equal(s.history, f.history[:2])
    assert s.has_text.tolist() == [True, False] and s.text[0, 0] == pytest.approx(1.0, abs=1e-2)
    assert (s.stage == -1).all()


def _stream_samples(days: int = 40, n: int = 60):
    """A join over ``days`` forecast days of ``n`` SKUs whose sales follow their history's level."""
    rng = np.random.default_rng(3)
    join = SampleJoin()
    keys = [f"s{i}".encode() for i in range(n)]
    level = rng.gamma(2.0, 2.0, size=n)
    for d in range(1000, 1000 + days):
        hist = rng.poisson(level[:, None, None] * np.ones((n, 6, 56))).astype(np.float32)
        f = build_features(hist, d, np.full(n, 900))
        for _, v in encode_inputs(keys, f, np.arange(n)):
            join.add(decode(v))
        for h in HORIZONS:
            for _, v in encode_outcomes(keys, d, h, rng.poisson(level * h).astype(np.float32)):
                join.add(decode(v))
    return join.samples()


def test_training_never_sees_an_outcome_that_closed_in_the_held_back_days():
    s = _stream_samples()
    rules = RetrainRules(holdout_days=7)
    train_set, hold = split(s, rules)
    start = int(hold.origin.min())
    assert sorted(set(hold.origin.tolist())) == list(range(start, start + 7))
    assert train_set.origin.max() < start
    closes = train_set.origin[:, None] + np.asarray(HORIZONS)[None, :]
    assert np.isnan(train_set.targets[closes > start]).all()
    assert np.isfinite(train_set.targets[closes <= start]).all()


def test_a_candidate_is_promoted_only_when_better_by_the_margin():
    serving, _ = load_checkpoint(DEFAULT_CHECKPOINT)
    s = _stream_samples()
    won = retrain(serving, s, RetrainRules(epochs=2, margin=-1.0, coverage_slack=1.0, newest_slack=100.0))
    assert won.promote and won.figures["candidate"]["samples"] == won.figures["serving"]["samples"] > 0
    lost = retrain(serving, s, RetrainRules(epochs=2, margin=0.99))
    assert not lost.promote and "not 99% below" in lost.reason
    # The serving network itself is not changed by training its copy.
    fresh, _ = load_checkpoint(DEFAULT_CHECKPOINT)
    assert all(torch.equal(a, b) for a, b in zip(serving.state_dict().values(), fresh.state_dict().values()))


def test_a_models_record_round_trips_and_refuses_what_is_not_one():
    model, meta = load_checkpoint(DEFAULT_CHECKPOINT)
    config = torch.load(DEFAULT_CHECKPOINT, weights_only=True)["config"]
    new_id, value = checkpoint_codec.encode(model, config, {"parent": "x"})
    assert new_id == meta["id"]  # the id is the weights' hash, wherever they travel
    back, back_meta = checkpoint_codec.decode(value)
    assert back_meta["parent"] == "x" and checkpoint_codec.read_header(value)[0] == config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), back.state_dict().values()))
    with pytest.raises(CheckpointError, match="not a trendcast models record"):
        checkpoint_codec.decode(pickle.dumps(config))
    with pytest.raises(CheckpointError, match="bytes after its last tensor|damaged|does not fit"):
        checkpoint_codec.decode(value[:-8])
    _, other = checkpoint_codec.encode(model, config, {})
    header_len = int.from_bytes(other[4:8], "little")
    header = other[8: 8 + header_len].replace(b'"feature_spec": %d' % FEATURE_SPEC_VERSION, b'"feature_spec": 99')
    with pytest.raises(SpecMismatch):
        checkpoint_codec.decode(other[:4] + len(header).to_bytes(4, "little") + header + other[8 + header_len:])


def test_a_running_worker_serves_a_promoted_model_and_keeps_it_when_a_record_is_refused():
    from stream_app.settings import load_settings
    from stream_app.worker.metrics import Metrics
    from stream_app.worker.model_updates import ModelWatcher
    from stream_app.worker.scoring import build_scorer

    metrics = Metrics.create()
    holder = {"scorer": build_scorer(load_settings(), metrics)}
    first = holder["scorer"]
    watcher = ModelWatcher(load_settings(), metrics, lambda: holder["scorer"],
                           lambda s: holder.__setitem__("scorer", s))

    def take(values: list[bytes]) -> None:  # what the watcher's loop does with a poll's records
        found = watcher.load(values)
        if found is not None:
            watcher.apply(*found)

    model, meta = load_checkpoint(DEFAULT_CHECKPOINT)
    config = torch.load(DEFAULT_CHECKPOINT, weights_only=True)["config"]
    with torch.no_grad():
        next(model.parameters()).add_(0.01)  # other weights: another id
    new_id, value = checkpoint_codec.encode(model, config, {"parent": meta["id"], "stage_confidence": None})
    take([b"TCKP\x00\x00\x00\x00", value])  # the newest that loads wins
    now = holder["scorer"]
    assert now is not first and now.model == ("trendcast-net", new_id)
    assert now.encoder is first.encoder and now.device == first.device
    f = _features(4, 15_000)
    fb, fields = now.score(f)
    assert {m["version"] for m in fields} == {new_id} and np.isfinite(fb.quantiles).all()
    assert first.score(f)[1][0]["version"] == meta["id"]  # a tick that started before keeps its model
    sample = metrics.registry.get_sample_value
    assert sample("trendcast_model_updates_total", {"outcome": "served"}) == 1
    assert sample("trendcast_model_info", {"name": "trendcast-net", "version": new_id, "device": "cpu"}) == 1
    assert sample("trendcast_model_info", {"name": "trendcast-net", "version": meta["id"], "device": "cpu"}) == 0
    take([b"TCKP\x05\x00\x00\x00{bad"])
    assert holder["scorer"] is now
    assert sample("trendcast_model_updates_total", {"outcome": "refused"}) == 1
    take([value])  # already serving it: nothing changes
    assert holder["scorer"] is now and sample("trendcast_model_updates_total", {"outcome": "served"}) == 1


def test_a_cycle_decodes_the_days_it_trains_and_judges_on_and_a_replay_draw_of_older_ones():
    from stream_app.worker.retrain_job import chosen_days, record_day

    assert record_day(b"in:15000:s00001") == 15000 and record_day(b"out:15000:7:s1") == 15000
    assert record_day(b"garbage") is None and record_day(None) is None
    rules = RetrainRules(holdout_days=14, recent_days=56, replay_share=0.5)
    days = list(range(1000, 1400))
    chosen = chosen_days(days, rules)
    recent = set(range(1399 - 14 - 56 - 14, 1400))
    assert recent <= chosen
    older = chosen - recent
    assert len(older) == int(np.ceil(0.5 * len(recent))) and max(older) < min(recent)
    assert chosen_days(days[-10:], rules) == set(days[-10:]) and chosen_days([], rules) == set()


def test_a_candidate_worse_on_the_newest_days_1_day_outcomes_is_not_promoted():
    from models.retraining import H1, H7, newest
    from models.training import predict

    serving, _ = load_checkpoint(DEFAULT_CHECKPOINT)
    s = _stream_samples()
    last3 = s.origin >= s.origin.max() - 2
    s.targets[last3, H7:] = np.nan  # the newest 3 days: only their 1-day outcome has closed
    fresh = newest(s)
    assert sorted(set(fresh.origin.tolist())) == sorted(set(s.origin[last3].tolist()))
    # Those days sold exactly what the serving network said: no candidate can beat it there.
    s.targets[last3, H1] = predict(serving, newest(s))[0][:, H1, 1]
    d = retrain(serving, s, RetrainRules(epochs=2, margin=-1.0, coverage_slack=1.0))
    assert d.figures["serving"]["wape_1d_newest"] < 1e-6 < d.figures["candidate"]["wape_1d_newest"]
    assert not d.promote and "newest days' 1-day outcomes" in d.reason


def test_the_retrain_commands_defaults_are_the_rules_defaults():
    import typer

    from stream_app.cli.main import cli

    command = typer.main.get_command(cli).commands["retrain"]
    defaults = {p.name: p.default for p in command.params}
    rules = RetrainRules()
    for name in ("holdout_days", "recent_days", "replay_share", "margin", "coverage_slack", "newest_slack", "epochs",
                 "lr"):
        assert defaults[name] == getattr(rules, name), name


def test_a_retrained_network_worse_than_the_shipped_one_is_rolled_back_to_it():
    import copy

    shipped, _ = load_checkpoint(DEFAULT_CHECKPOINT)
    serving = copy.deepcopy(shipped)  # a retrained network gone wrong: the shipped weights, shaken
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in serving.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.3 * (p.std() if p.numel() > 1 else 1.0))
    s = _stream_samples()
    d = retrain(serving, s, RetrainRules(epochs=1, newest_slack=100.0), shipped=shipped)
    assert d.figures["shipped"]["wape_7d"] < d.figures["serving"]["wape_7d"] * 0.98
    # Its coverage is further from 80 % than the shaken one's: a candidate would be refused for that, it is not.
    assert abs(d.figures["shipped"]["coverage_7d"] - 0.8) > abs(d.figures["serving"]["coverage_7d"] - 0.8) + 0.02
    assert d.promote and d.candidate is shipped and d.reason.startswith("rolled back to the shipped checkpoint")
    # While the shipped network itself serves, it is no challenger of its own.
    again = retrain(shipped, s, RetrainRules(epochs=1, margin=0.99), shipped=shipped)
    assert "shipped" not in again.figures and not again.promote
