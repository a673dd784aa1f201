"""The hot-path decoder agrees with the contract and names the reason for every rejection."""

import orjson
import pytest

from stream_app.core.decode import Event, Invalid, decode, decode_catalog
from stream_app.core.windows import KIND_CART, KIND_CLICK, KIND_ORDER


def enc(obj):
    return orjson.dumps(obj)


ORDER = {"schema_version": 1, "event_id": "e1", "order_id": "o1", "sku": "A", "ts": 1_700_000_000_000,
         "qty": 3, "unit_price": 2.5, "currency": "GBP"}
CART = {"schema_version": 1, "event_id": "e2", "sku": "A", "ts": 1_700_000_000_000, "qty": 1, "action": "remove"}
CLICK = {"schema_version": 1, "event_id": "e3", "sku": "A", "ts": 1_700_000_000_000, "session_id": "s"}


def test_valid_events_decode():
    assert decode(KIND_ORDER, b"A", enc(ORDER)) == Event("A", ORDER["ts"], 3, 7.5, False, "e1")
    assert decode(KIND_CART, b"A", enc(CART)) == Event("A", CART["ts"], 1, 0.0, True, "e2")
    assert decode(KIND_CLICK, b"A", enc(CLICK)) == Event("A", CLICK["ts"], 1, 0.0, False, "e3")


@pytest.mark.parametrize(
    "kind,key,value,code",
    [
        (KIND_ORDER, b"A", b"{not json", "bad_json"),
        (KIND_ORDER, b"A", None, "bad_json"),
        (KIND_ORDER, b"A", b"[1,2]", "not_object"),
        (KIND_ORDER, b"A", enc({k: v for k, v in ORDER.items() if k != "event_id"}), "missing_field"),
        (KIND_ORDER, b"A", enc({k: v for k, v in ORDER.items() if k != "unit_price"}), "missing_field"),
        (KIND_ORDER, b"A", enc({**ORDER, "ts": "2024-01-01"}), "wrong_type"),
        (KIND_ORDER, b"A", enc({**ORDER, "ts": True}), "wrong_type"),
        (KIND_ORDER, b"A", enc({**ORDER, "qty": -2}), "bad_value"),
        (KIND_ORDER, b"A", enc({**ORDER, "qty": 0}), "bad_value"),
        (KIND_ORDER, b"A", enc({**ORDER, "qty": 1.5}), "wrong_type"),
        (KIND_ORDER, b"A", enc({**ORDER, "unit_price": -1}), "bad_value"),
        (KIND_ORDER, b"A", enc({**ORDER, "unit_price": "1"}), "wrong_type"),
        (KIND_ORDER, b"A", enc({**ORDER, "sku": ""}), "bad_value"),
        (KIND_ORDER, b"A", enc({**ORDER, "schema_version": 2}), "bad_value"),
        (KIND_ORDER, b"B", enc(ORDER), "key_mismatch"),
        (KIND_ORDER, None, enc(ORDER), "key_mismatch"),
        (KIND_CART, b"A", enc({**CART, "action": "delete"}), "bad_value"),
        (KIND_CART, b"A", enc({k: v for k, v in CART.items() if k != "action"}), "missing_field"),
        (KIND_CLICK, b"A", enc({**CLICK, "event_id": 7}), "wrong_type"),
    ],
)
def test_invalid_events_get_a_stable_reason_code(kind, key, value, code):
    r = decode(kind, key, value)
    assert type(r) is Invalid and r.code == code and r.message


def test_catalog_records():
    rec = {"schema_version": 1, "sku": "A", "title": "Mug", "description": "", "category": "kitchen",
           "price": 3.0, "launched_at": None}
    assert decode_catalog(b"A", enc(rec))["title"] == "Mug"
    assert decode_catalog(b"A", enc({**rec, "price": -1})).code == "bad_value"
    assert decode_catalog(b"A", enc({k: v for k, v in rec.items() if k != "title"})).code == "missing_field"
    assert decode_catalog(b"B", enc(rec)).code == "key_mismatch"
