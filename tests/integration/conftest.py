"""Fixtures for tests against the real embedded broker (Tansu) and real worker processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka_helpers import Run

from stream_app.worker.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """One embedded broker for the whole test session (each test uses its own topics)."""
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def make_run(broker, tmp_path):
    """Factory of :class:`Run` objects; their workers are stopped after the test."""
    runs: list[Run] = []

    def factory(**overrides: object) -> Run:
        r = Run(broker, tmp_path, **overrides)
        runs.append(r)
        return r

    yield factory
    for r in runs:
        r.stop()
