"""Dataset adapters: the UCI Online Retail rules, stable ids, event-time order, skipped rows by reason."""

from __future__ import annotations

import gzip
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from schemas import validate
from stream_app.core.decode import KINDS, Event, decode, decode_catalog
from stream_app.data.eventfiles import TopicFiles
from stream_app.data.replay import ADAPTERS, EventFiles, UciOnlineRetail

SAMPLE = Path(__file__).parents[1] / "data" / "uci_online_retail_sample.csv.gz"
HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


@pytest.fixture(scope="module")
def sample():
    a = UciOnlineRetail(SAMPLE)
    return a, list(a.rows())


def uci(tmp_path: Path, body: str, **kw) -> tuple[UciOnlineRetail, list]:
    path = tmp_path / "retail.csv"
    path.write_text(HEADER + body)
    a = UciOnlineRetail(path, **kw)
    return a, list(a.rows())


def test_sample_counts_by_topic_and_skip_reason(sample):
    a, rows = sample
    assert Counter(k for k, _ in rows) == {"orders": 2949, "catalog": 100}
    assert dict(a.skipped) == {"non_product": 283, "cancellation": 119, "zero_price": 38, "stock_adjustment": 29,
                               "gift_voucher": 5}
    assert 2949 + sum(a.skipped.values()) == 3423  # every row is sent or counted
    assert set(a.topics) == {"orders", "catalog"}  # no clicks, no carts: nothing invented


def test_sample_events_follow_the_contracts_in_event_time_order(sample):
    _, rows = sample
    ts = [v["ts"] for k, v in rows if k == "orders"]
    assert ts == sorted(ts)
    ids = [v["event_id"] for k, v in rows if k == "orders"]
    assert len(set(ids)) == len(ids)
    seen = set()
    for kind, v in rows:
        validate(kind, v)
        if kind == "catalog":
            assert type(decode_catalog(v["sku"].encode(), orjson.dumps(v))) is dict
            assert v["sku"] not in seen  # the record comes before the SKU's first order
            assert v["category"] == "unknown" and v["price"] is None and v["launched_at"] is None
        else:
            assert type(decode(KINDS.index(kind), v["sku"].encode(), orjson.dumps(v))) is Event
            assert v["qty"] >= 1 and v["unit_price"] > 0 and v["currency"] == "GBP"
        seen.add(v["sku"])


def test_event_ids_are_stable_and_survive_subsets(sample, tmp_path):
    _, rows = sample
    again = list(UciOnlineRetail(SAMPLE).rows())
    assert again == rows
    # The lines of a few SKUs alone get the same ids as in the bigger file.
    lines = gzip.open(SAMPLE, "rt").read().splitlines()
    keep = {"22748", "21724"}
    subset = tmp_path / "subset.csv"
    subset.write_text("\n".join([lines[0]] + [ln for ln in lines[1:] if ln.split(",")[1] in keep]) + "\n")
    ids = {v["event_id"] for k, v in UciOnlineRetail(subset).rows() if k == "orders"}
    assert ids and ids == {v["event_id"] for k, v in rows if k == "orders" and v["sku"] in keep}


def test_each_rule_on_hand_made_rows(tmp_path):
    body = "".join([
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n",
        "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,2,2010-12-01 08:26:00,2.55,17850,United Kingdom\n",
        "536366,84968e,SET OF 16 VINTAGE BLACK CUTLERY,1,2010-12-01 09:00:00,12.75,,United Kingdom\n",
        "C536379,85123A,WHITE HANGING HEART T-LIGHT HOLDER,-1,2010-12-01 09:41:00,2.55,14527,United Kingdom\n",
        "536370,POST,POSTAGE,3,2010-12-01 08:45:00,18,12583,France\n",
        "536371,DOT,DOTCOM POSTAGE,1,2010-12-01 08:45:00,569.77,,United Kingdom\n",
        "536372,M,Manual,1,2010-12-01 08:45:00,1,,United Kingdom\n",
        "536373,BANK CHARGES,Bank Charges,1,2010-12-01 08:45:00,15,,United Kingdom\n",
        "536374,gift_0001_10,Dotcomgiftshop Gift Voucher £10.00,1,2010-12-01 08:45:00,8.51,,United Kingdom\n",
        "536375,21275,damaged,-30,2010-12-01 08:45:00,0,,United Kingdom\n",
        "536376,22139,,56,2010-12-01 08:45:00,0,,United Kingdom\n",
        "536377,22139,RETROSPOT TEA SET CERAMIC 11 PC,two,2010-12-01 08:45:00,4.95,,United Kingdom\n",
        "536378,22139,RETROSPOT TEA SET CERAMIC 11 PC,1,not a date,4.95,,United Kingdom\n",
        "556000,22139,RETROSPOT TEA SET CERAMIC 11 PC,4,2011-06-08 10:30:00,4.95,,United Kingdom\n",
    ])
    a, rows = uci(tmp_path, body)
    assert dict(a.skipped) == {"cancellation": 1, "non_product": 4, "gift_voucher": 1, "stock_adjustment": 1,
                               "zero_price": 1, "malformed": 2}
    orders = [v for k, v in rows if k == "orders"]
    assert [(o["event_id"], o["qty"]) for o in orders] == [
        ("uci-536365-85123A-1", 6), ("uci-536365-85123A-2", 2),  # two lines of one SKU on one invoice
        ("uci-536366-84968E-1", 1), ("uci-556000-22139-1", 4)]
    assert orders[2]["sku"] == "84968E"  # lower-case suffixes are the same product
    assert orders[0]["ts"] == ms("2010-12-01 08:26:00")  # winter: UK time is UTC
    assert orders[3]["ts"] == ms("2011-06-08 09:30:00")  # summer: UK time is UTC+1
    assert orders[0]["order_id"] == "536365" and orders[0]["unit_price"] == 2.55
    catalog = [v for k, v in rows if k == "catalog"]
    assert [(c["sku"], c["title"]) for c in catalog] == [
        ("85123A", "WHITE HANGING HEART T-LIGHT HOLDER"), ("84968E", "SET OF 16 VINTAGE BLACK CUTLERY"),
        ("22139", "RETROSPOT TEA SET CERAMIC 11 PC")]


def test_rows_are_sorted_by_event_time_and_sliced(tmp_path):
    body = ("2,111AA,LATE,1,2010-12-02 10:00:00,1.0,,UK\n"
            "1,222BB,EARLY,1,2010-12-01 10:00:00,1.0,,UK\n"
            "3,333CC,ORIGINAL FORMAT,1,12/3/2010 9:05,1.0,,UK\n")
    _, rows = uci(tmp_path, body)
    assert [v["sku"] for k, v in rows if k == "orders"] == ["222BB", "111AA", "333CC"]
    assert rows[-1][1]["ts"] == ms("2010-12-03 09:05:00")
    a, rows = uci(tmp_path, body, since_ms=ms("2010-12-02 00:00:00"), until_ms=ms("2010-12-03 00:00:00"))
    assert [v["sku"] for k, v in rows] == ["111AA", "111AA"] and a.skipped == {"outside_window": 2}


def test_a_file_that_is_not_the_dataset_is_refused(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="not the UCI Online Retail CSV"):
        list(UciOnlineRetail(path).rows())


def test_event_files_adapter_merges_topics_by_event_time(tmp_path):
    with TopicFiles(tmp_path) as files:
        files.write("catalog", {"schema_version": 1, "sku": "a", "title": "A", "description": "", "category": "x"})
        for ts in (1, 5, 9):
            files.write("clicks", {"schema_version": 1, "event_id": f"c{ts}", "sku": "a", "ts": ts})
        for ts in (2, 6):
            files.write("orders", {"schema_version": 1, "event_id": f"o{ts}", "order_id": "x", "sku": "a", "ts": ts,
                                   "qty": 1, "unit_price": 1.0})
    a = ADAPTERS["events"](tmp_path, until_ms=9)
    assert isinstance(a, EventFiles)
    assert [(k, v.get("ts")) for k, v in a.rows()] == [
        ("catalog", None), ("clicks", 1), ("orders", 2), ("clicks", 5), ("orders", 6)]
    assert a.skipped == {"outside_window": 1}
