"""The model in the stream: a real worker scores with the shipped checkpoint and product-text embeddings.

Catalog records and orders go in through an independent producer; an
independent consumer reads the forecasts and the embeddings changelog.
A worker whose checkpoint cannot load forecasts with the baseline and says
so per message; one whose checkpoint has another feature spec refuses to
start with one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import orjson
import pytest
import torch

from kafka_helpers import json_values, produce, read_topic, wait_for
from models.checkpoint import read_meta
from models.neural import DEFAULT_CHECKPOINT
from models.text import TextEncoder, catalog_text, unpack_embeddings
from schemas import validate
from stream_app.core.scorer import TEXT_HASH_BYTES, text_digest

pytestmark = pytest.mark.integration

DAY = 86_400_000
D0 = 20_000  # 2024-10-04
DAYS = 3
CATALOG = {
    "M00": ("Christmas tree lights", "Warm white LED string, 10 m", "seasonal"),
    "M01": ("Ceramic coffee mug", "Stoneware, 350 ml, dishwasher safe", "kitchen"),
    "M02": ("Kids rain jacket", "Waterproof, hooded, age 6-8", "apparel"),
}
SKUS = [*CATALOG, "M03", "M04"]  # the last two have no catalog record


def _orders(skus: list[str], seed: int = 5) -> list[tuple[str, bytes, bytes]]:
    rng = np.random.default_rng(seed)
    out, n = [], 0
    for day in range(DAYS):
        for sku in skus:
            for _ in range(int(rng.integers(1, 4))):
                ts = (D0 + day) * DAY + int(rng.integers(0, DAY))
                out.append((ts, sku, {"schema_version": 1, "event_id": f"o{n}", "order_id": f"x{n}", "sku": sku,
                                      "ts": ts, "qty": int(rng.integers(1, 4)), "unit_price": 4.5}))
                n += 1
    return [(sku, ts, v) for ts, sku, v in sorted(out, key=lambda x: x[0])]


def _closer(run) -> tuple[str, bytes, bytes]:
    """A click two days after the last order: it closes the order days (idle partitions follow it)."""
    click = {"schema_version": 1, "event_id": "closer", "sku": SKUS[0], "ts": (D0 + DAYS + 1) * DAY + 7_200_000}
    return run.topic("clicks"), SKUS[0].encode(), orjson.dumps(click)


def _send(run, with_catalog: bool = True) -> None:
    msgs = []
    if with_catalog:
        for sku, (title, desc, cat) in CATALOG.items():
            rec = {"schema_version": 1, "sku": sku, "title": title, "description": desc, "category": cat}
            msgs.append((run.topic("catalog"), sku.encode(), orjson.dumps(rec)))
    msgs += [(run.topic("orders"), sku.encode(), orjson.dumps(v)) for sku, _, v in _orders(SKUS)]
    produce(run.bootstrap, [*msgs, _closer(run)])


def _readyz(worker) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/readyz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _last_forecasts(run) -> list[dict] | None:
    fs = [f for f in json_values(read_topic(run.bootstrap, run.topic("forecasts"))) if f["as_of"] == (D0 + DAYS) * DAY]
    return fs if {f["sku"] for f in fs} == set(SKUS) else None


def test_the_worker_publishes_model_forecasts_using_product_text(make_run):
    run = make_run(forecaster="model")
    worker = run.start_worker()
    _send(run)
    forecasts = wait_for(lambda: _last_forecasts(run), 120, "a model forecast for every SKU", on_fail=run.logs)
    checkpoint = read_meta(DEFAULT_CHECKPOINT)["id"]
    for f in forecasts:
        validate("forecasts", f)
        assert f["model"] == {"name": "trendcast-net", "version": checkpoint}  # the model, not the baseline
        for h in f["horizons"].values():
            assert 0 <= h["p10"] <= h["p50"] <= h["p90"] and np.isfinite(h["p90"])

    # Each catalog SKU was embedded once, from its own text, and the record is in the changelog.
    changelog = f"{run.settings.app_id}-sku-embeddings-v1-changelog"
    records = {r.key.decode(): r.value for r in read_topic(run.bootstrap, changelog)}
    assert set(records) == set(CATALOG)
    texts = {sku: catalog_text(*CATALOG[sku]) for sku in CATALOG}
    expected = TextEncoder(device="cpu").encode(list(texts.values()))
    for (sku, text), vec in zip(texts.items(), expected):
        assert records[sku][:TEXT_HASH_BYTES] == text_digest(text)
        got = unpack_embeddings([records[sku][TEXT_HASH_BYTES:]])[0]
        assert float(got @ vec) > 0.99  # int8 codes of the same vector
    metrics = worker.metrics()
    assert metrics.get("trendcast_text_embeddings_total") == len(CATALOG)
    assert metrics.get("trendcast_model_fallbacks_total", 0.0) == 0.0
    assert _readyz(worker) == (200, {"ready": True, "joined": True, "recovered": True, "model_serving": True,
                                     "broker_reachable": True, "forecaster": "model"})


def test_a_checkpoint_that_cannot_load_leaves_the_baseline_forecasting_and_says_so(make_run, tmp_path):
    bad = tmp_path / "damaged.pt"
    bad.write_bytes(DEFAULT_CHECKPOINT.read_bytes()[:1000])
    run = make_run(forecaster="model", model_path=str(bad))
    worker = run.start_worker()
    _send(run, with_catalog=False)
    forecasts = wait_for(lambda: _last_forecasts(run), 90, "a baseline forecast for every SKU", on_fail=run.logs)
    for f in forecasts:
        validate("forecasts", f)
        assert f["model"] == {"name": "baseline-ewma", "version": "1", "fallback_reason": "not_loaded"}
    metrics = worker.metrics()
    assert metrics["trendcast_model_fallbacks_total"] >= len(SKUS)
    assert "is corrupt or not a trendcast checkpoint" in run.log.read_text()  # the reason, logged once
    # It forecasts, but a rollout must not count it ready: the model it was given does not serve.
    assert _readyz(worker) == (503, {"ready": False, "joined": True, "recovered": True, "model_serving": False,
                                     "broker_reachable": True, "forecaster": "baseline"})
    assert metrics["trendcast_ready"] == 0


def test_a_checkpoint_of_another_feature_spec_stops_the_worker_with_one_line(make_run, tmp_path):
    blob = torch.load(DEFAULT_CHECKPOINT, weights_only=True)
    meta = json.loads(blob["meta"])
    blob["meta"] = json.dumps({**meta, "feature_spec": meta["feature_spec"] + 1})
    torch.save(blob, tmp_path / "future.pt")
    run = make_run(forecaster="model", model_path=str(tmp_path / "future.pt"))
    r = subprocess.run([sys.executable, "-m", "stream_app.cli", "worker"], env=run.env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.startswith("trendcast:")]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert f"feature spec {meta['feature_spec'] + 1}" in lines[0] and "trendcast train" in lines[0]
