"""Shared fixtures of the unit tests."""

import pytest

from stream_app.sim import Simulator
from stream_app.sim.output import write_simulation

SIM_START_MS = 1_719_792_000_000  # 2024-07-01


@pytest.fixture(scope="session")
def simulate(tmp_path_factory):
    """``simulate(n_skus, days, seed, orders_per_sku)`` -> a folder of simulator output (events, labels.csv)."""

    def make(n_skus: int, days: int, seed: int, orders_per_sku: float):
        folder = tmp_path_factory.mktemp(f"sim-{seed}")
        write_simulation(Simulator(n_skus=n_skus, days=days, start_ms=SIM_START_MS, seed=seed,
                                   orders_per_sku=orders_per_sku), folder)
        return folder

    return make
