"""The JSON Schemas are strict enough to matter and agree with the code that writes and reads messages."""

import orjson
import pytest
from jsonschema import Draft202012Validator, ValidationError

from models.baselines import EwmaForecaster
from schemas import (
    CONTRACTS, DEAD_LETTER_CODES, CartEvent, CatalogRecord, Click, DeadLetter, Forecast, Order, StageAlert,
    load_schema, validate,
)
from stream_app.decode import Invalid, decode
from stream_app.ingest import Ingestor, Rejected
from stream_app.publish import dead_letter_value
from stream_app.ticks import run_tick
from stream_app.windows import KIND_CART, KIND_ORDER, WindowSpec

DAY = 86_400_000
T = 20_000 * DAY


@pytest.mark.parametrize("name", CONTRACTS)
def test_every_schema_is_valid_draft_2020_12(name):
    Draft202012Validator.check_schema(load_schema(name))


def test_records_serialise_to_their_contracts_and_back():
    samples = {
        "clicks": Click("e1", "A", T, session_id="s"),
        "carts": CartEvent("e2", "A", T, 2, "remove"),
        "orders": Order("e3", "o1", "A", T, 1, 2.5, "GBP"),
        "catalog": CatalogRecord("A", "Mug", "", "kitchen", 3.0, None),
        "stage-alerts": StageAlert("A", T, "growth", "maturity", 0.8, {"days": 7, "p50": 3.0, "p90": 5.0},
                                   {"growth_7d": None, "units_7d": 3.0, "units_28d": 9.0, "days_since_first_sale": 40}),
        "dead-letters": DeadLetter("orders", 0, 5, "A", "e30=", None, {"code": "late", "message": "late"}, T),
    }
    for name, rec in samples.items():
        d = rec.to_dict()
        validate(name, d)
        assert type(rec).from_dict(d) == rec


BASE_ORDER = {"schema_version": 1, "event_id": "e", "order_id": "o", "sku": "A", "ts": T, "qty": 1, "unit_price": 1.0}


@pytest.mark.parametrize(
    "name,obj",
    [
        ("orders", {**BASE_ORDER, "qty": -1}),
        ("orders", {**BASE_ORDER, "qty": 0}),
        ("orders", {**BASE_ORDER, "qty": 1.5}),
        ("orders", {**BASE_ORDER, "ts": "2024-01-01"}),
        ("orders", {k: v for k, v in BASE_ORDER.items() if k != "event_id"}),
        ("orders", {**BASE_ORDER, "unit_price": -2}),
        ("orders", {**BASE_ORDER, "schema_version": 2}),
        ("carts", {"event_id": "e", "sku": "A", "ts": T, "qty": 1, "action": "delete"}),
        ("clicks", {"event_id": "e", "sku": "", "ts": T}),
        ("dead-letters", {"schema_version": 1, "source_topic": "orders", "partition": 0, "offset": 1, "key": None,
                          "value_b64": "", "value_text": None, "reason": {"code": "oops", "message": "m"}, "at": 1}),
    ],
)
def test_schema_rejects_what_the_decoder_rejects(name, obj):
    with pytest.raises(ValidationError):
        validate(name, obj)
    kind = {"orders": KIND_ORDER, "carts": KIND_CART}.get(name)
    if kind is not None:
        assert type(decode(kind, b"A", orjson.dumps(obj))) is Invalid


def test_dead_letter_codes_match_the_schema():
    assert tuple(load_schema("dead-letters")["properties"]["reason"]["properties"]["code"]["enum"]) == DEAD_LETTER_CODES


def _forecasts():
    ing = Ingestor({}, WindowSpec(), grace_ms=0, max_ahead_ms=3 * DAY, future_confirm=10)
    recs = [(i, b"A", orjson.dumps({**BASE_ORDER, "event_id": f"e{i}", "ts": T + i * DAY // 3, "qty": 1 + i % 3}))
            for i in range(90)]
    ing.process(KIND_ORDER, 0, recs)
    out = []
    for day in range(T // DAY, T // DAY + 29):
        r = run_tick(ing, 0, day, EwmaForecaster())
        out += r.forecasts + r.alerts
    return out


def test_messages_the_worker_writes_satisfy_their_contracts():
    messages = [orjson.loads(v) for _, v in _forecasts()]
    forecasts = [m for m in messages if "horizons" in m]
    assert len(forecasts) >= 28
    for m in forecasts:
        validate("forecasts", m)
        assert Forecast.from_dict(m).to_dict() == m
    dl = orjson.loads(dead_letter_value(Rejected(2, 1, 7, b"A", b"\xff\xfe", "bad_json", "not JSON"), "orders", 5))
    validate("dead-letters", dl)
    assert dl["value_text"] is None and dl["value_b64"] == "//4="
