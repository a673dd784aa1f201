"""JSON-lines event files, one per topic: writing, reading, merging in event-time order.

A folder of event files holds ``clicks.jsonl``, ``carts.jsonl``,
``orders.jsonl`` and ``catalog.jsonl`` (``.jsonl.gz`` too), one plain JSON
event per line, each file in event-time order. ``trendcast produce FILE
--topic T`` sends one of them; the offline aggregation and ``trendcast
replay DIR`` read them all. A file of ``{"topic": ..., "value": {...}}``
lines (what ``trendcast produce`` reads without ``--topic``) is read too.
"""

from __future__ import annotations

import gzip
import heapq
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import orjson

EVENT_KINDS = ("clicks", "carts", "orders")
TOPIC_KINDS = (*EVENT_KINDS, "catalog")


def kind_of(path: str | Path) -> str | None:
    """The topic kind a file is named after (``orders.jsonl.gz`` -> ``orders``), or None."""
    stem = Path(path).name.split(".", 1)[0]
    return stem if stem in TOPIC_KINDS else None


def _open(path: Path, mode: str) -> IO[bytes]:
    # Write buffers are large: a simulation writes millions of short lines.
    if path.suffix == ".gz":
        return gzip.open(path, mode + "b", compresslevel=6)
    return open(path, mode + "b", buffering=1 << 20)


class TopicFiles:
    """Writes events to one JSON-lines file per topic kind in ``folder`` (a context manager).

    ``counts`` holds the lines written per kind. With ``compress``, files are
    ``.jsonl.gz``.
    """

    def __init__(self, folder: str | Path, *, compress: bool = False) -> None:
        self.folder = Path(folder)
        self.suffix = ".jsonl.gz" if compress else ".jsonl"
        self.counts: dict[str, int] = {}
        self._files: dict[str, IO[bytes]] = {}

    def __enter__(self) -> "TopicFiles":
        return self

    def __exit__(self, *exc: object) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()

    def write(self, kind: str, value: dict) -> None:
        """Append one event of topic ``kind`` (one of :data:`TOPIC_KINDS`)."""
        f = self._files.get(kind)
        if f is None:
            if kind not in TOPIC_KINDS:
                raise ValueError(f"unknown topic kind {kind!r}; expected one of {TOPIC_KINDS}")
            # Made on the first event, so a source that fails at once leaves no folder behind.
            self.folder.mkdir(parents=True, exist_ok=True)
            f = self._files[kind] = _open(self.folder / f"{kind}{self.suffix}", "w")
            self.counts[kind] = 0
        f.write(orjson.dumps(value))
        f.write(b"\n")
        self.counts[kind] += 1

    def write_all(self, items: Iterable[tuple[str, dict]]) -> None:
        """Append every ``(kind, event)`` of ``items``."""
        for kind, value in items:
            self.write(kind, value)


def event_files(folder: str | Path) -> dict[str, Path]:
    """The event files of a folder by kind; ``FileNotFoundError`` when there are none."""
    found = {}
    for path in sorted(Path(folder).iterdir()):
        kind = kind_of(path)
        if kind and path.name.endswith((".jsonl", ".jsonl.gz")) and kind not in found:
            found[kind] = path
    if not found:
        raise FileNotFoundError(f"no event files ({', '.join(k + '.jsonl' for k in TOPIC_KINDS)}) in {folder}")
    return found


def read_lines(path: str | Path, kind: str | None = None) -> Iterator[tuple[str, bytes]]:
    """``(kind, value bytes)`` of each line of one file, in file order.

    A plain event's bytes are the line as written (what ``trendcast produce``
    sends); an envelope line's kind is its ``topic``. ``kind`` defaults to
    the kind the file is named after. Blank lines are skipped.
    """
    path = Path(path)
    default = kind or kind_of(path)
    with _open(path, "r") as f:
        for raw in f:
            line = raw.strip()
            if not line:
                continue
            if b'"topic"' in line and b'"value"' in line:
                obj = orjson.loads(line)
                if isinstance(obj, dict) and "value" in obj:
                    yield obj["topic"], orjson.dumps(obj["value"])
                    continue
            if default is None:
                raise ValueError(f"{path}: a plain event, but the file is not named after a topic kind")
            yield default, line


def merged(paths: Iterable[str | Path]) -> Iterator[tuple[str, dict]]:
    """``(kind, event)`` of several event files, merged by event time (``ts``, epoch ms).

    Each file must be in event-time order. Records without ``ts`` (catalog)
    come first, ahead of the events.
    """
    paths = list(paths)

    def keyed(path: Path) -> Iterator[tuple[int, str, dict]]:
        for kind, raw in read_lines(path):
            value = orjson.loads(raw)
            yield value.get("ts", -1) if isinstance(value, dict) else -1, kind, value

    for _, kind, value in heapq.merge(*(keyed(Path(p)) for p in paths), key=lambda x: x[0]):
        yield kind, value
