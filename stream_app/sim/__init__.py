"""The lifecycle simulator: Bass-diffusion demand with known stages, scenarios, and a conversion funnel.

``Simulator`` (events and ground truth), ``Scenarios`` (which effects are on),
``write_simulation`` (files per topic plus ``labels.csv``); the stage rule is
documented in :mod:`stream_app.sim.bass`.
"""

from stream_app.sim.bass import STAGES
from stream_app.sim.output import write_simulation
from stream_app.sim.scenarios import SCENARIOS, Scenarios
from stream_app.sim.simulator import Simulator

__all__ = ["SCENARIOS", "STAGES", "Scenarios", "Simulator", "write_simulation"]
