"""The network's text input three ways on UCI: frozen embeddings, fine-tuned ones, no text.

Issue 15 asks what the product text earns inside the network, for
established SKUs and SKUs first sold in the last 28 days. This script
reads the UCI file once and gives the same network recipe three text
inputs:

* ``frozen``: the pretrained all-MiniLM-L6-v2 embeddings the worker uses;
* ``fine_tuned``: the encoder's top layer fine-tuned with the forecasting
  loss on the launches whose first 14 days closed by 2011-05-31
  (:func:`models.text_tuning.fine_tune`, as ``trendcast evaluate
  --cold-starts`` does), then every SKU's text embedded by it;
* ``no_text``: every SKU without a catalog record (the network's learned
  "unknown" vector).

Each trains from seeds 11-13 on UCI alone (training samples to 2011-05-31,
early stopping on June; the simulator runs of the default recipe have no
fine-tuned texts), and each network and the three's average are scored on
June (validation, every 2 days) and on July-August 2011 (test, weekly
origins from 1 July): 7-day WAPE over the SKUs that sold in the period,
split into established SKUs and SKUs first sold in the 28 days up to the
origin. Cold starts (no sale yet) are the launch prior's, scored by
``trendcast evaluate --cold-starts``; the network has nothing of them to read
on UCI (no clicks).

    python examples/text_ablation.py --text-cache /tmp/tc12/textcache
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from models.launch_prior import LAUNCHED_AFTER, launch_rows
from models.layout import UNITS
from models.network import TrendcastEnsemble
from models.text import TextEncoder
from models.text_tuning import fine_tune
from models.training import H7, Samples, TrainConfig, predict, sold_in_period, train, wape
from stream_app.data.samples import catalog_texts, panel_from_series
from stream_app.data.trainset import Dataset, build_samples, cut_panel
from stream_app.evaluation.dataset import daily_series, event_folder

UCI = Path(__file__).resolve().parents[1].parent / "shared/data/uci_online_retail/online_retail_2010-12_to_2011-08.csv.gz"
RECIPE = TrainConfig(epochs=20, patience=3, lr=3e-3, batch_size=2048)  # the default checkpoint's recipe


def day(iso: str) -> int:
    """Days since 1970-01-01 of an ISO date."""
    return (date.fromisoformat(iso) - date(1970, 1, 1)).days


def segments(q: np.ndarray, s: Samples) -> dict[str, float]:
    """7-day WAPE over the samples of SKUs that sold in the period: all, established, new (first sale < 28 days)."""
    y = s.targets[:, H7]
    keep = sold_in_period(s) & np.isfinite(y)
    new = keep & (s.age >= 0) & (s.age < 28)
    old = keep & (s.age >= 28)
    mid = q[:, H7, 1]
    return {"all": wape(y[keep], mid[keep]), "established": wape(y[old], mid[old]), "new": wape(y[new], mid[new]),
            "new_pairs": int(new.sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--uci", type=Path, default=UCI)
    ap.add_argument("--text-cache", type=Path, help="the pretrained embeddings' cache (trendcast train --text-cache)")
    ap.add_argument("--seeds", default="11,12,13")
    args = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trendcast-ablation-") as tmp:
        folder = event_folder(args.uci, "uci", Path(tmp))
        series = daily_series(folder)
        by_sku = catalog_texts(folder)
    known = [s for s in series.skus if s in by_sku]
    texts = [by_sku[s] for s in known]
    frozen = TextEncoder(device="cpu", cache_dir=args.text_cache).encode(texts)
    base = panel_from_series(series, dict(zip(known, frozen)))
    # fine-tuned on the launches closed by the end of the training period, as the cold-start report does
    units = base.values[:, UNITS]
    first_index = np.where(base.first_sale_day >= 0, base.first_sale_day - base.first_day, -1)
    rows, totals = launch_rows(units, first_index, base.has_text, day("2011-05-31") - base.first_day, LAUNCHED_AFTER)
    row_text = {s: by_sku.get(s, "") for s in base.skus}
    tuner = TextEncoder(device="cpu")
    report = fine_tune(tuner, [row_text[base.skus[i]] for i in rows], totals)
    tuned = dict(zip(known, tuner.encode(texts)))
    print(f"data and texts {time.perf_counter() - t0:.0f} s; fine-tuned on {report.texts} launches "
          f"(pinball {report.losses[0]:.3f} -> {report.losses[-1]:.3f})", flush=True)
    tuned_text = np.stack([tuned[s] if s in tuned else np.zeros(base.text.shape[1], np.float32) for s in base.skus])

    cut = Dataset("uci", cut_panel(base, day("2011-06-30")), None)
    tr = build_samples(cut, cut.panel.first_day + 6, day("2011-05-31"), every=2)
    va = build_samples(cut, day("2011-05-31"), day("2011-06-30"), every=2, stage_until=day("2011-06-30"))
    te = build_samples(Dataset("uci", base, None), day("2011-07-01"), day("2011-08-31"), every=7)
    print(f"samples: train {len(tr):,}, June {len(va):,}, July-August {len(te):,}", flush=True)

    def texted(s: Samples, way: str) -> Samples:
        if way == "frozen":
            return s
        if way == "fine_tuned":  # the same rows: the cut panel keeps the full panel's SKU order
            return dataclasses.replace(s, text=tuned_text)
        return dataclasses.replace(s, text=np.zeros_like(s.text), has_text=np.zeros_like(s.has_text))

    seeds = [int(x) for x in args.seeds.split(",")]
    for way in ("frozen", "fine_tuned", "no_text"):
        t, v, e = texted(tr, way), texted(va, way), texted(te, way)
        nets = []
        for seed in seeds:
            net, history = train([t], [v], dataclasses.replace(RECIPE, seed=seed))
            nets.append(net)
            print(way, seed, "June", _fmt(segments(predict(net, v)[0], v)), "July-August",
                  _fmt(segments(predict(net, e)[0], e)), f"{len(history['epochs'])} epochs", flush=True)
        ensemble = TrendcastEnsemble(members=len(nets), **RECIPE.model)
        for slot, net in zip(ensemble.nets, nets):
            slot.load_state_dict(net.state_dict())
        ensemble.eval()
        print(way, "average", "June", _fmt(segments(predict(ensemble, v)[0], v)), "July-August",
              _fmt(segments(predict(ensemble, e)[0], e)), flush=True)
    print(f"{time.perf_counter() - t0:.0f} s")


def _fmt(r: dict) -> str:
    return (f"all {r['all']:.4f} established {r['established']:.4f} new {r['new']:.4f} "
            f"({r['new_pairs']} new pairs)")


if __name__ == "__main__":
    main()
