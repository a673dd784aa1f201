"""Compare training recipes fast: the samples are built once, each network trains in seconds.

``trendcast train`` spends most of its time reading the data and embedding
texts (4-5 of its 12 minutes for the default checkpoint); one network of
the default recipe trains in 12-49 s on 2 CPU cores. This script builds the
samples of the default checkpoint's recipe once (the UCI file to
2011-05-31, validation June 2011, simulator runs as augmentation, cached
as ``.npz`` under ``--cache``), then trains each recipe from several seeds
and scores each network and their average on June's validation samples:
7-day WAPE over SKUs that sold in the validation period, WAPE on SKUs first
sold in the 28 days up to the origin, p10-p90 coverage and width; and the
stage macro-F1 on the simulator runs' validation days.
Never on the test months (July-August 2011).

    python examples/train_sweep.py --sim /tmp/tc12/sim11 --sim /tmp/tc12/sim12 --sim /tmp/tc12/sim13 \\
        --recipe base={} --recipe lr1e3='{"lr": 0.001}' --seeds 11,12,13,14,15

A recipe is JSON: :class:`models.training.TrainConfig` fields, and
``model`` for the network's constructor arguments. With ``--teacher``
every recipe is distilled from that checkpoint (``distill_weight``).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import fields, replace
from datetime import date
from pathlib import Path

import numpy as np
import torch

from models.network import TrendcastEnsemble
from models.training import H7, Samples, TrainConfig, macro_f1, predict, sold_in_period, train, wape

UCI = Path(__file__).resolve().parents[1].parent / "shared/data/uci_online_retail/online_retail_2010-12_to_2011-08.csv.gz"
DEFAULT = TrainConfig(epochs=20, patience=3, lr=3e-3, batch_size=2048)  # the default checkpoint's recipe


def _day(iso: str) -> int:
    return (date.fromisoformat(iso) - date(1970, 1, 1)).days


def samples(sims: list[Path], uci: Path, cache: Path) -> tuple[list[Samples], list[Samples]]:
    """Training and validation samples per dataset (the UCI file last), from ``cache`` when it holds them."""
    names = [*(s.name for s in sims), "uci"]
    files = [cache / f"{n}-{part}.npz" for n in names for part in ("train", "valid")]
    if not all(f.exists() for f in files):
        from models.text import TextEncoder
        from stream_app.data.trainset import build_samples, load_dataset, split_days

        cache.mkdir(parents=True, exist_ok=True)
        encoder = TextEncoder(device="cpu", cache_dir=cache / "text")
        for name, (path, source) in zip(names, [*((s, "events") for s in sims), (uci, "uci")]):
            until = (_day("2011-05-31"), _day("2011-06-30")) if source == "uci" else (None, None)
            d = load_dataset(path, source, encoder, until_day=until[1])
            tu, vu = split_days(d.panel, *until)
            for part, s in (("train", build_samples(d, d.panel.first_day + 6, tu, every=2)),
                            ("valid", build_samples(d, tu, vu, every=2, stage_until=vu))):
                np.savez(cache / f"{name}-{part}.npz", **{f.name: getattr(s, f.name) for f in fields(Samples)})
    loaded = [np.load(f) for f in files]
    as_samples = [Samples(**{f.name: (bool(z[f.name]) if f.name == "stage_truth" else z[f.name])
                             for f in fields(Samples)}) for z in loaded]
    return as_samples[0::2], as_samples[1::2]


def scores(q: np.ndarray, s: Samples) -> dict:
    """7-day WAPE (all, new SKUs), coverage and width over the samples of SKUs that sold in the period."""
    y = s.targets[:, H7]
    keep = sold_in_period(s) & np.isfinite(y)
    new = keep & (s.age >= 0) & (s.age < 28)
    lo, mid, hi = q[:, H7, 0], q[:, H7, 1], q[:, H7, 2]
    return {"wape": wape(y[keep], mid[keep]), "wape_new": wape(y[new], mid[new]),
            "coverage": float(np.mean((y[keep] >= lo[keep]) & (y[keep] <= hi[keep]))),
            "width": float((hi[keep] - lo[keep]).sum() / y[keep].sum())}


def stage_f1(model, valid: list[Samples]) -> float | None:
    """Mean stage macro-F1 of the argmax over the validation sets whose labels are a simulator's truth."""
    f1 = []
    for s in valid:
        if s.stage_truth and (s.stage >= 0).any():
            probs = predict(model, s)[1]
            labelled = s.stage >= 0
            f1.append(macro_f1(s.stage[labelled], probs[labelled].argmax(1)))
    return float(np.mean(f1)) if f1 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sim", type=Path, action="append", default=[], help="a simulator run (trendcast simulate)")
    ap.add_argument("--uci", type=Path, default=UCI)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/trendcast-sweep"))
    ap.add_argument("--recipe", action="append", required=True, help="NAME=JSON of TrainConfig overrides")
    ap.add_argument("--seeds", default="11,12,13,14,15")
    ap.add_argument("--teacher", type=Path, help="a checkpoint to distil (trendcast train --teacher)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    tr, va = samples(args.sim, args.uci, args.cache)
    seeds = [int(x) for x in args.seeds.split(",")]
    teacher = None
    if args.teacher is not None:
        from models.checkpoint import load_checkpoint

        teacher = [predict(load_checkpoint(args.teacher)[0], s)[0] for s in tr]
    for spec in args.recipe:
        name, _, text = spec.partition("=")
        over = json.loads(text or "{}")
        cfg = replace(DEFAULT, **{k: v for k, v in over.items() if k != "model"},
                      model={**DEFAULT.model, **over.get("model", {})})
        nets = []
        for seed in seeds:
            t0 = time.perf_counter()
            net, history = train(tr, va, replace(cfg, seed=seed), teacher=teacher)
            nets.append(net)
            r = {**scores(predict(net, va[-1])[0], va[-1]), "stage_f1_sim": stage_f1(net, va) or float("nan")}
            print(name, seed, {k: round(v, 4) for k, v in r.items()}, f"{len(history['epochs'])} epochs",
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
        ensemble = TrendcastEnsemble(members=len(nets), **cfg.model)
        for slot, net in zip(ensemble.nets, nets):
            slot.load_state_dict(net.state_dict())
        r = {**scores(predict(ensemble.eval(), va[-1])[0], va[-1]), "stage_f1_sim": stage_f1(ensemble, va) or float("nan")}
        print(name, "average", {k: round(v, 4) for k, v in r.items()}, flush=True)


if __name__ == "__main__":
    main()
