"""Checkpoint files: the network's weights, its constructor arguments and metadata, loaded safely.

A checkpoint is one ``torch.save`` of a plain dict (``weights_only`` loads
it: no pickled code runs). Its ``meta`` holds the feature-spec version the
network was trained on, a fingerprint of the training data, validation
metrics, the quantile levels, horizons and stages of its heads.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from models.interface import HORIZONS, QUANTILES, STAGES
from models.network import build_network
from models.layout import FEATURE_SPEC_VERSION

FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; ``str`` is one line: what is wrong and how to fix it."""


class SpecMismatch(CheckpointError):
    """A sound checkpoint trained on another feature spec: scoring it would publish confident nonsense.

    ``found``: the checkpoint's spec version (None when it names none).
    """

    def __init__(self, message: str, found) -> None:
        super().__init__(message)
        self.found = found


def stamped(model: torch.nn.Module, meta: dict) -> tuple[dict, dict]:
    """``(weights on CPU, meta)`` of ``model``: ``meta`` with its id, feature spec, quantiles, horizons and stages.

    The id is ``trendcast-net-<12 hex digits of the weights' hash>``.
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    digest = hashlib.sha256()
    for k in sorted(state):
        digest.update(k.encode())
        digest.update(state[k].numpy().tobytes())
    return state, {**meta, "id": f"trendcast-net-{digest.hexdigest()[:12]}", "feature_spec": FEATURE_SPEC_VERSION,
                   "quantiles": list(QUANTILES), "horizons": list(HORIZONS), "stages": list(STAGES)}


def save_checkpoint(path: str | Path, model: torch.nn.Module, config: dict, meta: dict) -> str:
    """Write ``model`` with its constructor ``config`` and ``meta`` to ``path``; returns the checkpoint id (:func:`stamped`)."""
    state, meta = stamped(model, meta)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "config": dict(config), "meta": json.dumps(meta), "state": state}, path)
    return meta["id"]


def update_meta(path: str | Path, entries: dict) -> str:
    """Add ``entries`` to the metadata of the checkpoint at ``path``, in place; returns its id (unchanged).

    For what is fitted after training on the trained network (the stage
    confidence map); the weights, hence the id, stay as they are. The
    readable ``.json`` beside it, when there is one, gets the entries too.
    """
    path = Path(path)
    blob = _read(path)
    meta = {**blob["meta"], **entries}
    torch.save({"format": FORMAT, "config": blob["config"], "meta": json.dumps(meta), "state": blob["state"]}, path)
    side = path.with_suffix(".json")  # the readable copy `trendcast train` writes beside it
    if side.is_file():
        side.write_text(json.dumps({**json.loads(side.read_text()), **entries}, indent=1) + "\n")
    return meta["id"]


def read_meta(path: str | Path) -> dict:
    """The metadata of the checkpoint at ``path`` (raises :class:`CheckpointError`)."""
    return _read(Path(path))["meta"]


def load_checkpoint(path: str | Path, spec_version: int = FEATURE_SPEC_VERSION) -> tuple[torch.nn.Module, dict]:
    """``(model on CPU in eval mode, meta)``; :class:`CheckpointError` if the file is missing, corrupt or of another feature spec."""
    path = Path(path)
    blob = _read(path)
    return build_checked(blob["config"], blob["state"], blob["meta"], str(path), spec_version)


def build_checked(config: dict, state: dict, meta: dict, source: str,
                  spec_version: int = FEATURE_SPEC_VERSION) -> tuple[torch.nn.Module, dict]:
    """The network of ``config`` with weights ``state``, after the checks every checkpoint passes.

    :class:`SpecMismatch` when ``meta`` names another feature spec,
    :class:`CheckpointError` for other horizons or stages, or weights that
    do not fit; ``source`` names where it came from in the message.
    """
    if meta.get("feature_spec") != spec_version:
        raise SpecMismatch(
            f"checkpoint {meta.get('id', source)} was trained with feature spec {meta.get('feature_spec')}, "
            f"this trendcast builds spec {spec_version}: retrain with `trendcast train` or use a matching release",
            meta.get("feature_spec"))
    if tuple(meta.get("horizons", ())) != HORIZONS or tuple(meta.get("stages", ())) != STAGES:
        raise CheckpointError(f"checkpoint {meta.get('id', source)} has other horizons or stages than this "
                              "trendcast: retrain with `trendcast train`")
    try:
        model = build_network(config)
        model.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {source} does not fit this network ({str(exc).splitlines()[0]}): "
                              "retrain with `trendcast train`") from None
    return model.eval(), meta


def _read(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train one with `trendcast train` or reinstall trendcast")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError("not a trendcast checkpoint")
        blob["meta"] = json.loads(blob["meta"])
    except Exception as exc:  # torch raises many kinds on a damaged file; all mean the same here
        raise CheckpointError(f"checkpoint {path} is corrupt or not a trendcast checkpoint "
                              f"({type(exc).__name__}): train a new one with `trendcast train`") from None
    return blob
