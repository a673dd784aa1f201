"""Model scoring throughput for ``trendcast bench``: window states in, forecasts out, as a tick does it.

One measured step is exactly the tick's work per micro-batch minus the
messages: decompress the SKUs' window states (:class:`StateBatch`), build
the features (:func:`features_from_batch`), stack their text embeddings
from the table records, and call the model. The text encoder, which runs
once per catalog record and not per tick, is measured separately.
"""

from __future__ import annotations

import time

import numpy as np

from models.interface import Forecaster
from stream_app.core.features import features_from_batch
from stream_app.core.scorer import embedding_record, text_features
from stream_app.core.windows import DAY_MS, StateBatch, WindowSpec

DISTINCT_STATES = 4096  # distinct SKU states, reused round-robin (building them is not what we measure)


def synth_states(n: int, spec: WindowSpec, as_of_day: int, seed: int = 3) -> list[bytes]:
    """``n`` encoded SKU states with a few weeks of random clicks, carts and orders up to ``as_of_day``."""
    rng = np.random.default_rng(seed)
    blobs = []
    offset = 0
    for i in range(n):
        w = spec.new(partition=i % 4)
        events = int(rng.integers(1, 40))
        days = as_of_day - rng.integers(0, spec.history_days, size=events)
        for k, day in zip(rng.integers(0, 3, size=events).tolist(), np.sort(days).tolist()):
            offset += 1
            qty = int(rng.integers(1, 5))
            w.apply(k, offset, day * DAY_MS + 1000, qty, 2.5 * qty if k == 2 else 0.0, False, offset)
        blobs.append(w.to_bytes())
    return blobs


def scoring_throughput(
    forecaster: Forecaster,
    *,
    skus: int = 200_000,
    batch_size: int = 8192,
    text_share: float = 0.8,
    spec: WindowSpec | None = None,
    seed: int = 3,
) -> dict[str, float]:
    """Score ``skus`` SKUs in micro-batches of ``batch_size``; SKUs/s and per-batch latency (seconds).

    ``text_share`` of the SKUs have a text embedding (random unit vectors:
    the network's cost does not depend on what the text says).
    """
    spec = spec or WindowSpec(history_days=56, dedup_ids=16)
    as_of = 20_000
    distinct = synth_states(min(DISTINCT_STATES, skus), spec, as_of, seed)
    rng = np.random.default_rng(seed)
    keys = [f"SKU-{i:07d}".encode() for i in range(len(distinct))]
    vecs = rng.normal(size=(len(keys), 384)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    store = {k: embedding_record(k.decode(), v) for k, v, keep in zip(keys, vecs, rng.random(len(keys)) < text_share)
             if keep}
    batches = []
    for start in range(0, skus, batch_size):
        idx = [(start + j) % len(distinct) for j in range(min(batch_size, skus - start))]
        batches.append(([keys[j] for j in idx], [distinct[j] for j in idx]))
    _score_one(forecaster, *batches[0], spec, as_of, store)  # warm-up: allocations, kernels
    times = []
    t0 = time.perf_counter()
    for bkeys, blobs in batches:
        times.append(_score_one(forecaster, bkeys, blobs, spec, as_of, store))
    total = time.perf_counter() - t0
    phases = np.array(times)  # (batches, 3): decode, features, network seconds
    per_batch = phases.sum(axis=1)
    return {"skus": skus, "batch_size": batch_size, "skus_per_s": skus / total,
            "features_network_skus_per_s": skus / float(phases[:, 1:].sum()),
            "decode_s": float(phases[:, 0].sum()), "features_s": float(phases[:, 1].sum()),
            "network_s": float(phases[:, 2].sum()),
            "batch_p50_s": float(np.median(per_batch)), "batch_max_s": float(np.max(per_batch))}


def _score_one(forecaster, keys, blobs, spec, as_of, store) -> tuple[float, float, float]:
    """Seconds of one micro-batch's phases: state decode, features (histories + text), network."""
    t0 = time.perf_counter()
    batch = StateBatch.from_blobs(blobs, spec)
    t1 = time.perf_counter()
    feats = features_from_batch(batch, as_of, *text_features(keys, store))
    t2 = time.perf_counter()
    fb = forecaster.predict(feats)
    np.asarray(fb.quantiles)  # results on the host, as the tick needs them
    return t1 - t0, t2 - t1, time.perf_counter() - t2


def encoder_throughput(encoder, *, texts: int = 2048) -> dict[str, float]:
    """Catalog texts embedded per second by ``encoder`` (titles and descriptions of demo-like length)."""
    words = ("organic cotton tote bag with leather handles", "cast-iron skillet 26 cm, pre-seasoned",
             "Christmas glass bauble set, hand painted, festive red", "replacement filter cartridge")
    batch = [f"{words[i % 4]} model {i}. Durable, easy to clean, ships in recyclable packaging."
             for i in range(texts)]
    encoder.encode(batch[:64])  # warm-up
    t0 = time.perf_counter()
    encoder.encode(batch)
    dt = time.perf_counter() - t0
    return {"texts": texts, "texts_per_s": texts / dt}


def run_scoring_bench(settings, *, skus: int, batch_sizes: tuple[int, ...]) -> dict:
    """Model scoring throughput at each batch size, and the text encoder's, on the settings' device.

    The forecaster is the one the worker would build (:func:`stream_app.worker.scoring.build_scorer`),
    so a model that does not load is measured as the baseline and reported so.
    """
    import os
    import platform

    import torch

    from stream_app.worker.scoring import build_scorer

    scorer = build_scorer(settings)
    name, version = scorer.model
    res = {"model": f"{name} {version}", "device": scorer.device, "skus": skus,
           "threads": torch.get_num_threads(), "cores": os.cpu_count(), "python": platform.python_version(),
           "gpu": torch.cuda.get_device_name(0) if scorer.device == "cuda" else None, "runs": []}
    for b in batch_sizes:
        res["runs"].append(scoring_throughput(scorer.forecaster, skus=skus, batch_size=b))
    if scorer.encoder is not None:
        res["encoder"] = encoder_throughput(scorer.encoder)
    return res


def _shares(x: dict) -> str:
    total = x["decode_s"] + x["features_s"] + x["network_s"]
    return " / ".join(f"{100 * x[k] / total:.0f}" for k in ("decode_s", "features_s", "network_s"))


def scoring_report(r: dict) -> str:
    """The Markdown section of :func:`run_scoring_bench`'s figures."""
    from datetime import datetime, timezone

    where = r["gpu"] or f"CPU, {r['cores']} cores, {r['threads']} torch threads"
    lines = [
        f"## Model scoring ({r['device']})",
        "",
        "Written by `trendcast bench --part scoring`: window states → features → text embeddings from their",
        "table records → network, as one forecast tick does it per micro-batch (no Kafka, no messages).",
        "",
        f"* date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"* model: {r['model']} on {where}, Python {r['python']}",
        f"* command: `trendcast bench --part scoring --scoring-skus {r['skus']}`"
        + (" (TRENDCAST_DEVICE=cuda)" if r["device"] == "cuda" else ""),
        "",
        "| batch size | SKUs/s, state to forecast | SKUs/s, features + network | decode / features / network "
        "(% of time) | batch p50 (ms) | batch max (ms) |",
        "|---:|---:|---:|---:|---:|---:|",
        *[f"| {x['batch_size']:,} | {x['skus_per_s']:,.0f} | {x['features_network_skus_per_s']:,.0f} | "
          f"{_shares(x)} | {1000 * x['batch_p50_s']:.1f} | {1000 * x['batch_max_s']:.1f} |" for x in r["runs"]],
        "",
        "State to forecast: LZ4-compressed window states are decoded (the windows' cost, paid by every tick",
        "whatever the forecaster), then features, then the network. Features + network: from decoded",
        "states, the part the issue's scoring target names.",
        "",
    ]
    if "encoder" in r:
        lines += [f"Text encoder (once per catalog record, not per tick): "
                  f"{r['encoder']['texts_per_s']:,.0f} texts/s over {r['encoder']['texts']:,} texts.", ""]
    return "\n".join(lines)
