"""A deterministic simulator of Siro's External API (recordings endpoints).

The world is a pure function of a clock (see :mod:`.world`); :class:`SimulatorApi` answers
requests against it, :class:`SimulatorTransport` plugs it into httpx without a port, and
:mod:`.server` serves it over HTTP (``python -m siro_assets.simulator``).

May import `siro_assets.api_client` (timestamps); never Dagster, DuckDB or the warehouse.
"""

from .api import FAULT_KINDS, FaultConfig, SimulatedDisconnect, SimulatorApi
from .clock import Clock, FixedClock, OffsetClock, WallClock
from .transport import SimulatorTransport
from .world import World, WorldConfig

__all__ = [
    "World",
    "WorldConfig",
    "FaultConfig",
    "SimulatorApi",
    "SimulatorTransport",
    "SimulatedDisconnect",
    "FAULT_KINDS",
    "FixedClock",
    "OffsetClock",
    "WallClock",
    "Clock",
]
