"""``trendcast train``: datasets -> samples split by time -> a trained checkpoint with its metadata.

The edge around :mod:`stream_app.data.trainset` and :mod:`models.training`: reads
the files, embeds the product texts, draws the progress bar and writes the
checkpoint plus a small JSON of its metadata beside it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from stream_app.requests import BadRequest, iso

SOURCES = ("auto", "events", "uci")


@dataclass(frozen=True)
class TrainRequest:
    """What ``trendcast train`` was asked for (days: days since 1970-01-01 UTC)."""

    data: list[Path]
    source: str
    out: Path
    train_until: int | None
    valid_until: int | None
    every: int = 2
    text_cache: Path | None = None
    device: str = "auto"
    teacher: Path | None = None
    overrides: dict = field(default_factory=dict)
    command: str = ""


def check(req: TrainRequest) -> None:
    """Raise :class:`BadRequest` for a request that cannot run."""
    if not req.data:
        raise BadRequest("give at least one --data PATH")
    for p in req.data:
        if not p.exists():
            raise BadRequest(f"--data {p}: no such file or folder")
    if req.source not in SOURCES:
        raise BadRequest(f"unknown --source {req.source!r}; one of: {', '.join(SOURCES)}")
    if (req.train_until is None) != (req.valid_until is None):
        raise BadRequest("give --train-until and --valid-until together (or neither: 70 % / 85 % of each dataset)")
    if req.teacher is not None and not req.teacher.exists():
        raise BadRequest(f"--teacher {req.teacher}: no such checkpoint")
    if req.train_until is not None and req.valid_until <= req.train_until + 14:
        raise BadRequest("--valid-until must be more than 14 days after --train-until")


def run_train(req: TrainRequest, *, progress: bool = False) -> list[str]:
    """Train and save a checkpoint for ``req``; returns the summary lines."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from models.text import TextEncoder
    from stream_app.data.trainset import build_samples, fingerprint, load_dataset, split_days
    from models.training import TrainConfig, predict, train_members, validation_metrics

    check(req)
    start = time.perf_counter()
    cfg = replace(TrainConfig(), **req.overrides)
    teacher_model, teacher_id = None, None
    if req.teacher is not None:
        try:
            teacher_model, teacher_meta = load_checkpoint(req.teacher)
        except CheckpointError as exc:
            raise BadRequest(f"--teacher {req.teacher}: {exc}") from None
        teacher_id = teacher_meta.get("id")
        if teacher_model.history_days != cfg.model["history_days"]:
            raise BadRequest(f"--teacher {req.teacher} reads {teacher_model.history_days} days of history, the "
                             f"network to train {cfg.model['history_days']}: distil from a teacher of the same days")
    encoder = TextEncoder(device=req.device, cache_dir=req.text_cache)
    datasets, train_sets, valid_sets, splits = [], [], [], {}
    for path in req.data:
        try:
            d = load_dataset(path, req.source, encoder, until_day=req.valid_until)
        except (ValueError, OSError) as exc:
            raise BadRequest(f"--data {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        tu, vu = split_days(d.panel, req.train_until, req.valid_until)
        days = cfg.model["history_days"]  # samples carry as many days as the network reads
        try:
            train_sets.append(build_samples(d, d.panel.first_day + 6, tu, every=req.every, history_days=days))
            valid_sets.append(build_samples(d, tu, vu, every=req.every, history_days=days, stage_until=vu))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        datasets.append(d)
        splits[d.name] = {"train_until": iso(tu), "valid_until": iso(vu), "train_samples": len(train_sets[-1]),
                          "valid_samples": len(valid_sets[-1]), "skus": len(d.panel.skus),
                          "stage_truth": "simulator" if d.stages is not None else "labelling rule"}
    prep_s = time.perf_counter() - start
    with Progress(TextColumn("training"), BarColumn(), TextColumn("epoch {task.completed}/{task.total}"),
                  TextColumn("{task.fields[info]}"), TimeElapsedColumn(), disable=not progress) as bar:
        task = bar.add_task("train", total=cfg.epochs, info="")

        def on_epoch(member, epoch, train_loss, valid_loss, best):
            bar.update(task, completed=epoch, info=f"member {member + 1}/{cfg.members} train {train_loss:.4f} "
                                                   f"valid {valid_loss:.4f} best {best:.4f}")

        # The teacher's quantiles of every training sample: what the network is also pulled towards.
        teacher = None if teacher_model is None else [predict(teacher_model, s)[0] for s in train_sets]
        model, history, config = train_members(train_sets, valid_sets, cfg, on_epoch=on_epoch, teacher=teacher)
    metrics = {d.name: validation_metrics(model, v) for d, v in zip(datasets, valid_sets)}
    meta = {"data_fingerprint": fingerprint(datasets), "datasets": splits, "metrics": metrics,
            "training": {**history, "seconds": round(time.perf_counter() - start, 1),
                         "data_seconds": round(prep_s, 1), "teacher": teacher_id},
            "command": req.command, "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    cid = save_checkpoint(req.out, model, config, meta)
    req.out.with_suffix(".json").write_text(json.dumps({**meta, "id": cid}, indent=1) + "\n")
    epochs = sum(len(run) for run in history.get("members", [history["epochs"]]))
    lines = [f"wrote {req.out} ({req.out.stat().st_size / 1e6:.2f} MB, {cid}) after "
             f"{epochs} epochs in {time.perf_counter() - start:.0f} s"]
    for name, m in metrics.items():
        f1 = m["stage_macro_f1"]
        lines.append(f"{name} validation ({splits[name]['train_until']} .. {splits[name]['valid_until']}): "
                     f"WAPE@7 model {m['wape7_model']:.3f}, ewma {m['wape7_ewma']:.3f}, ma28 {m['wape7_ma28']:.3f}; "
                     f"80% coverage {m['coverage80_7']:.2f}; stage macro-F1 "
                     f"{'n/a' if f1 is None else f'{f1:.3f}'}")
    return lines
