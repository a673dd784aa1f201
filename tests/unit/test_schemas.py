"""The JSON Schemas are strict enough to matter and agree with the code that writes and reads messages."""

import subprocess
import sys
from collections import namedtuple
from importlib import resources

import orjson
import pytest
from jsonschema import Draft202012Validator, ValidationError

from models.baselines import EwmaForecaster
from schemas import (
    CONTRACTS, DEAD_LETTER_CODES, HORIZONS, STAGES, CartEvent, CatalogRecord, Click, DeadLetter,
    DeadLetterReason, Forecast, HorizonQuantiles, InventoryLevel, Order, StageAlert, VERSIONS, load_schema, validate,
    validator,
)
from stream_app.core.decode import Invalid, decode
from stream_app.core.ingest import Ingestor, Rejected
from stream_app.worker.publish import dead_letter_value
from stream_app.core.ticks import run_tick
from stream_app.core.windows import KIND_CART, KIND_CLICK, KIND_ORDER, WindowSpec

DAY = 86_400_000
T = 20_000 * DAY
INPUTS = ("clicks", "carts", "orders", "catalog", "inventory")
OUTPUTS = ("forecasts", "stage-alerts", "dead-letters")

SAMPLES = {
    "clicks": Click("e1", "A", T, session_id="s"),
    "carts": CartEvent("e2", "A", T, 2, "remove"),
    "orders": Order("e3", "o1", "A", T, 1, 2.5, "GBP"),
    "catalog": CatalogRecord("A", "Mug", "", "kitchen", 3.0, None),
    "inventory": InventoryLevel("A", 12.0, T),
    "forecasts": Forecast(
        f"A/{T}/ewma:1", "A", T, {1: HorizonQuantiles(0.0, 1.0, 2.5), 7: HorizonQuantiles(3.0, 7.0, 12.0),
                 14: HorizonQuantiles(6.0, 14.0, 20.0)},
        "growth", {"introduction": 0.1, "growth": 0.7, "maturity": 0.15, "decline": 0.05},
        {"name": "ewma", "version": "1"},
        {"units_1d": 2.0, "units_7d": 9.0, "units_28d": 30.0, "clicks_7d": 41.0}, calibrated=True,
        cold_start=True,  # every field of the contract present: the round trip covers them all
    ),
    "stage-alerts": StageAlert(f"A/{T}/stage_change", "A", T, "stage_change", None, "growth", 0.8, {"days": 7, "p50": 3.0, "p90": 5.0},
                               {"growth_7d": 0.5, "units_7d": 3.0, "units_28d": 9.0, "days_since_first_sale": 40,
                                "extra_signal": "allowed"},
                               {"on_hand": 4.0, "on_hand_ts": T, "days_of_cover": 9.3, "reorder_qty": 2.0,
                                "service_level": 0.95}),
    "dead-letters": DeadLetter("orders", 0, 5, "A", "e30=", None, DeadLetterReason("late", "too late"), T),
}


def base(name):
    return SAMPLES[name].to_dict()


def without(d, *path):
    d = orjson.loads(orjson.dumps(d))
    node = d
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]
    return d


def replaced(d, value, *path):
    d = orjson.loads(orjson.dumps(d))
    node = d
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return d


def walk_properties(schema, where=()):
    for name, sub in schema.get("properties", {}).items():
        yield where + (name,), sub
        yield from walk_properties(sub, where + (name,))


@pytest.mark.parametrize("name", CONTRACTS)
def test_every_schema_is_a_valid_draft_2020_12_schema_with_docs(name):
    s = load_schema(name)
    Draft202012Validator.check_schema(s)
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert s["$id"] == f"https://trendcast.dev/schemas/{name}.v{VERSIONS[name]}.json"
    assert s["title"] and s["description"]
    props = list(walk_properties(s))
    assert len(props) >= 4
    for where, sub in props:
        assert sub.get("description"), f"{name}: {'.'.join(where)} has no description"
    assert s["properties"]["schema_version"]["const"] == VERSIONS[name]
    assert "schema_version" in s["required"]


def test_schema_files_are_package_data_one_per_contract():
    files = {f.name for f in resources.files("schemas").iterdir() if f.name.endswith(".json")}
    assert files == {f"{n}.v{VERSIONS[n]}.schema.json" for n in CONTRACTS}


def test_load_schema_and_validator():
    with pytest.raises(ValueError, match="unknown contract"):
        load_schema("order")
    assert validator("orders") is validator("orders")
    assert isinstance(validator("orders"), Draft202012Validator)


def test_package_imports_neither_torch_nor_faust_nor_the_app():
    code = ("import sys, schemas; bad = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'faust', 'stream_app', 'models', 'numpy'}); print(bad); assert not bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("name", CONTRACTS)
def test_records_serialise_to_exactly_their_contract_and_back(name):
    rec = SAMPLES[name]
    d = rec.to_dict()
    validate(name, d)
    assert set(d) == set(load_schema(name)["properties"])
    assert d["schema_version"] == VERSIONS[name]
    assert orjson.loads(orjson.dumps(d)) == d  # plain JSON values only
    assert type(rec).from_dict(orjson.loads(orjson.dumps(d))) == rec


def test_forecast_shape_uses_string_horizon_keys_and_from_dict_int_keys():
    d = base("forecasts")
    assert list(d["horizons"]) == [str(h) for h in HORIZONS]
    assert sorted(Forecast.from_dict(d).horizons) == list(HORIZONS)
    assert base("dead-letters")["reason"] == {"code": "late", "message": "too late"}


def test_a_cold_start_forecast_says_so_and_others_carry_no_such_key():
    import dataclasses

    cold = SAMPLES["forecasts"]
    plain = dataclasses.replace(cold, cold_start=False)
    assert "cold_start" not in plain.to_dict()
    validate("forecasts", plain.to_dict())
    d = cold.to_dict()
    validate("forecasts", d)
    assert d["cold_start"] is True and Forecast.from_dict(d) == cold
    with pytest.raises(ValidationError):
        validate("forecasts", {**plain.to_dict(), "cold_start": False})  # absent, or true


@pytest.mark.parametrize("name", INPUTS)
def test_inputs_accept_extra_fields_and_from_dict_ignores_them(name):
    d = {**base(name), "producer_note": "x"}
    validate(name, d)
    assert type(SAMPLES[name]).from_dict(d) == SAMPLES[name]


@pytest.mark.parametrize("name", OUTPUTS)
def test_outputs_reject_extra_fields(name):
    with pytest.raises(ValidationError):
        validate(name, {**base(name), "producer_note": "x"})


def test_from_dict_refuses_other_schema_versions_and_reads_a_missing_one_as_v1():
    with pytest.raises(ValueError, match="schema_version"):
        Order.from_dict({**base("orders"), "schema_version": 2})
    for version in (1, 2, 4):  # v1 forecasts had no id, v2 no cold_start: neither is read as v3
        with pytest.raises(ValueError, match="schema_version"):
            Forecast.from_dict({**base("forecasts"), "schema_version": version})
    for version in (1, 3):
        with pytest.raises(ValueError, match="schema_version"):
            StageAlert.from_dict({**base("stage-alerts"), "schema_version": version})
    assert Order.from_dict(without(base("orders"), "schema_version")) == SAMPLES["orders"]


def test_optional_input_fields_may_be_absent_or_null():
    validate("clicks", {"schema_version": 1, "event_id": "e", "sku": "A", "ts": 0})
    validate("clicks", {**base("clicks"), "session_id": None, "user_id": None})
    validate("orders", without(base("orders"), "currency"))
    validate("orders", {**base("orders"), "currency": None, "unit_price": 0})
    validate("catalog", {**base("catalog"), "price": None, "launched_at": T})
    validate("stage-alerts", replaced(base("stage-alerts"), None, "evidence", "growth_7d"))


# (contract, invalid object, path of the one error, JSON Schema keyword that catches it).
# Exactly one error each: the base is valid, so each case fails for the stated reason only.
INVALID = [
    ("orders", replaced(base("orders"), -1, "qty"), ("qty",), "minimum"),
    ("orders", replaced(base("orders"), 0, "qty"), ("qty",), "minimum"),
    ("orders", replaced(base("orders"), 1.5, "qty"), ("qty",), "type"),
    ("orders", replaced(base("orders"), "2024-01-01", "ts"), ("ts",), "type"),
    ("orders", replaced(base("orders"), True, "ts"), ("ts",), "type"),
    ("orders", without(base("orders"), "event_id"), (), "required"),
    ("orders", replaced(base("orders"), "", "order_id"), ("order_id",), "minLength"),
    ("orders", replaced(base("orders"), -2, "unit_price"), ("unit_price",), "minimum"),
    ("orders", replaced(base("orders"), "gbp", "currency"), ("currency",), "pattern"),
    ("orders", replaced(base("orders"), 2, "schema_version"), ("schema_version",), "const"),
    ("orders", without(base("orders"), "schema_version"), (), "required"),
    ("carts", replaced(base("carts"), "delete", "action"), ("action",), "enum"),
    ("carts", replaced(base("carts"), 0, "qty"), ("qty",), "minimum"),
    ("clicks", replaced(base("clicks"), "", "sku"), ("sku",), "minLength"),
    ("clicks", replaced(base("clicks"), "x" * 257, "sku"), ("sku",), "maxLength"),
    ("clicks", replaced(base("clicks"), 5, "session_id"), ("session_id",), "type"),
    ("clicks", replaced(base("clicks"), -1, "ts"), ("ts",), "minimum"),
    ("catalog", replaced(base("catalog"), -1, "price"), ("price",), "minimum"),
    ("catalog", without(base("catalog"), "description"), (), "required"),
    ("forecasts", without(base("forecasts"), "horizons", "14"), ("horizons",), "required"),
    ("forecasts", replaced(base("forecasts"), {"p10": 1, "p50": 1, "p90": 1}, "horizons", "30"), ("horizons",),
     "additionalProperties"),
    ("forecasts", without(base("forecasts"), "horizons", "7", "p90"), ("horizons", "7"), "required"),
    ("forecasts", replaced(base("forecasts"), -0.5, "horizons", "1", "p10"), ("horizons", "1", "p10"), "minimum"),
    ("forecasts", replaced(base("forecasts"), "peak", "stage"), ("stage",), "enum"),
    ("forecasts", without(base("forecasts"), "stage_probs", "decline"), ("stage_probs",), "required"),
    ("forecasts", replaced(base("forecasts"), 1.5, "stage_probs", "growth"), ("stage_probs", "growth"), "maximum"),
    ("forecasts", without(base("forecasts"), "model", "version"), ("model",), "required"),
    ("forecasts", replaced(base("forecasts"), 1, "calibrated"), ("calibrated",), "type"),
    ("stage-alerts", replaced(base("stage-alerts"), "peak", "previous_stage"), ("previous_stage",), "enum"),
    ("stage-alerts", replaced(base("stage-alerts"), 1.2, "confidence"), ("confidence",), "maximum"),
    ("stage-alerts", replaced(base("stage-alerts"), 0, "lead_time", "days"), ("lead_time", "days"), "minimum"),
    ("stage-alerts", without(base("stage-alerts"), "evidence", "units_7d"), ("evidence",), "required"),
    ("stage-alerts", replaced(base("stage-alerts"), 2.5, "evidence", "days_since_first_sale"),
     ("evidence", "days_since_first_sale"), "type"),
    ("dead-letters", replaced(base("dead-letters"), "oops", "reason", "code"), ("reason", "code"), "enum"),
    ("dead-letters", replaced(base("dead-letters"), "duplicate", "reason", "code"), ("reason", "code"), "enum"),
    ("dead-letters", replaced(base("dead-letters"), -1, "partition"), ("partition",), "minimum"),
    ("dead-letters", replaced(base("dead-letters"), "not base64!", "value_b64"), ("value_b64",), "pattern"),
    ("dead-letters", without(base("dead-letters"), "value_text"), (), "required"),
]


@pytest.mark.parametrize("name,obj,path,keyword", INVALID, ids=[f"{c[0]}-{'.'.join(c[2]) or c[3]}-{i}"
                                                              for i, c in enumerate(INVALID)])
def test_schema_rejects_invalid_messages_for_the_stated_reason(name, obj, path, keyword):
    errors = list(validator(name).iter_errors(obj))
    assert [(tuple(e.absolute_path), e.validator) for e in errors] == [(path, keyword)]
    with pytest.raises(ValidationError):
        validate(name, obj)


DECODER_KIND = {"orders": KIND_ORDER, "carts": KIND_CART, "clicks": KIND_CLICK}


@pytest.mark.parametrize("name,obj", [(c[0], c[1]) for c in INVALID
                                      if c[0] in DECODER_KIND and c[2] not in (("currency",), ("session_id",))
                                      and "schema_version" in c[1]])
def test_the_worker_decoder_rejects_what_the_schema_rejects(name, obj):
    # Skipped: fields the worker does not read, and a missing schema_version,
    # which the decoder reads as v1 to be lenient with old producers.
    assert type(decode(DECODER_KIND[name], b"A", orjson.dumps(obj))) is Invalid


def test_quantiles_out_of_order_are_rejected():
    with pytest.raises(ValueError, match="p10 <= p50 <= p90"):
        HorizonQuantiles(3.0, 2.0, 4.0)
    with pytest.raises(ValueError):
        HorizonQuantiles(-1.0, 0.0, 1.0)
    crossed = replaced(base("forecasts"), {"p10": 3.0, "p50": 2.0, "p90": 4.0}, "horizons", "7")
    validator("forecasts").validate(crossed)  # JSON Schema alone cannot see it ...
    with pytest.raises(ValidationError, match="p10 <= p50 <= p90") as exc:
        validate("forecasts", crossed)  # ... validate() does
    assert tuple(exc.value.absolute_path) == ("horizons", "7")
    with pytest.raises(ValidationError, match="p50 <= p90"):
        validate("stage-alerts", replaced(base("stage-alerts"), 9.0, "lead_time", "p50"))


def test_dead_letter_codes_match_the_schema():
    assert tuple(load_schema("dead-letters")["properties"]["reason"]["properties"]["code"]["enum"]) == DEAD_LETTER_CODES
    assert "duplicate" not in DEAD_LETTER_CODES


def test_stage_lists_match_the_schemas():
    f, a = load_schema("forecasts")["properties"], load_schema("stage-alerts")["properties"]
    assert tuple(f["stage"]["enum"]) == STAGES == tuple(a["stage"]["enum"])
    assert tuple(a["previous_stage"]["enum"]) == (*STAGES, None)
    assert tuple(f["stage_probs"]["required"]) == STAGES
    assert tuple(f["horizons"]["required"]) == tuple(str(h) for h in HORIZONS)


BASE_ORDER = {"schema_version": 1, "event_id": "e", "order_id": "o", "sku": "A", "ts": T, "qty": 1, "unit_price": 1.0}


def _worker_outputs():
    ing = Ingestor({}, WindowSpec(), grace_ms=0, max_ahead_ms=3 * DAY, future_confirm=10, idle_s=0.0)
    rec = namedtuple("Rec", "offset key value")
    recs = [rec(i, b"A", orjson.dumps({**BASE_ORDER, "event_id": f"e{i}", "ts": T + i * DAY // 3, "qty": 1 + i % 3}))
            for i in range(90)]
    days = ing.process(KIND_ORDER, 0, recs).closed_days
    out = []
    while days:  # as the worker does: forecast the closed days, then take in what they released
        for day in days:
            r = run_tick(ing, 0, day, EwmaForecaster())
            out += r.forecasts + r.alerts
        days = ing.drain(0, 0.0).closed_days
    return out


def test_messages_the_worker_writes_satisfy_their_contracts():
    messages = [orjson.loads(v) for _, v in _worker_outputs()]
    forecasts = [m for m in messages if "horizons" in m]
    assert len(forecasts) >= 28
    for m in forecasts:
        validate("forecasts", m)
        assert Forecast.from_dict(m).to_dict() == m
    for m in messages:
        if "previous_stage" in m:
            validate("stage-alerts", m)
            assert StageAlert.from_dict(m).to_dict() == m
    dl = orjson.loads(dead_letter_value(Rejected(2, 1, 7, b"A", b"\xff\xfe", "bad_json", "not JSON"), "orders", 5))
    validate("dead-letters", dl)
    assert dl["value_text"] is None and dl["value_b64"] == "//4="
    assert DeadLetter.from_dict(dl).reason == DeadLetterReason("bad_json", "not JSON")
