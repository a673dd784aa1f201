"""The worker's state: every changelog-backed table behind one store, written to Kafka by one flush.

Five tables hold what a worker knows (ARCHITECTURE.md, "State"): the SKU
windows, the catalog records, their text embeddings, the stock counts and
the partitions' learning (calibration and pending forecasts). Each is a
local ``key -> value`` dict of bytes (our own versioned encodings, never
pickles) that Faust restores from the table's changelog topic when a
partition is assigned. Everything the worker changes goes through
:class:`Table` (``put``, ``delete``), which remembers the key and its
partition; :meth:`StateStore.flush` sends the changed records (a ``None``
value is a tombstone) through the one publisher and waits for their
delivery. So every changelog record has one producer, and records of one
key reach its changelog partition in the order the worker made them.

The windows are the hot path (every event): the ingest marks their changed
keys itself (:attr:`stream_app.core.ingest.Ingestor.dirty`) and the store takes
them at the flush, so an event costs no extra call.

Faust's tables are not written through (their API sends through Faust's
own producer, with no order against ours); they are the restore path
only. The store works on any dict, so tests run it in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol


class Sender(Protocol):
    """What the store sends through (:class:`stream_app.worker.publish.Publisher`)."""

    def produce(self, topic: str, key: bytes | None, value: bytes | None, partition: int = -1) -> None: ...

    async def flush(self) -> None: ...


class Table:
    """One changelog-backed table: its local dict, its changelog topic, the keys changed since the last flush.

    ``data``: the local dict Faust restores into (:func:`stream_app.worker.faust_adapter.local_store`);
    ``topic``: the changelog topic; ``dirty``: partition -> changed keys;
    ``transient``: keys whose value is only for a restart to read (the
    worker holds them decoded elsewhere), dropped from ``data`` once sent.
    """

    def __init__(self, name: str, topic: str, data: dict[bytes, bytes],
                 dirty: Callable[[frozenset[int]], dict[int, set[bytes]]] | None = None,
                 transient: Callable[[bytes], bool] | None = None) -> None:
        self.name, self.topic, self.data = name, topic, data
        self._dirty: dict[int, set[bytes]] = {}
        self._take_external = dirty
        self.transient = transient

    def get(self, key: bytes, default: bytes | None = None) -> bytes | None:
        return self.data.get(key, default)

    def __getitem__(self, key: bytes) -> bytes:
        return self.data[key]

    def __contains__(self, key: object) -> bool:
        return key in self.data

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.data)

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        return self.data.items()

    def put(self, key: bytes, value: bytes, partition: int) -> None:
        """Set ``key`` and send it to changelog ``partition`` at the next flush."""
        self.data[key] = value
        self._dirty.setdefault(partition, set()).add(key)

    def delete(self, key: bytes, partition: int) -> None:
        """Drop ``key`` and send its tombstone at the next flush."""
        self.data.pop(key, None)
        self._dirty.setdefault(partition, set()).add(key)

    def forget(self, keys: Iterable[bytes], partitions: set[int]) -> None:
        """Drop ``keys`` locally, nothing sent (their partitions moved away), and their pending changes."""
        for key in list(keys):
            self.data.pop(key, None)
        for p in partitions:
            self._dirty.pop(p, None)

    def take_dirty(self, skip: frozenset[int] = frozenset()) -> dict[int, set[bytes]]:
        """The keys changed since the last call, by partition (the caller sends them); ``skip``'s stay for later."""
        dirty = {p: keys for p, keys in self._dirty.items() if p not in skip}
        self._dirty = {p: keys for p, keys in self._dirty.items() if p in skip}
        if self._take_external is not None:
            for p, keys in self._take_external(skip).items():
                dirty.setdefault(p, set()).update(keys)
        return dirty


class StateStore:
    """The worker's tables by name, and the one flush that writes their changes to the changelogs."""

    def __init__(self, tables: Iterable[Table]) -> None:
        self.tables = {t.name: t for t in tables}

    def __getitem__(self, name: str) -> Table:
        return self.tables[name]

    async def flush(self, sender: Sender) -> dict[str, int]:
        """Send every table's changed records and wait until they are delivered; records sent per table."""
        sent = self.send(sender)
        await sender.flush()
        return sent

    def send(self, sender: Sender, skip: frozenset[int] = frozenset()) -> dict[str, int]:
        """Queue every table's changed records with ``sender`` (no wait); records queued per table.

        Synchronous, so nothing changes a table while its changes are taken.
        The changes of the partitions in ``skip`` stay for a later call.
        """
        sent = {}
        for table in self.tables.values():
            n = 0
            data, transient = table.data, table.transient
            for partition, keys in table.take_dirty(skip).items():
                for key in keys:
                    sender.produce(table.topic, key, data.get(key), partition)
                    if transient is not None and transient(key):
                        data.pop(key, None)
                    n += 1
            sent[table.name] = n
        return sent
