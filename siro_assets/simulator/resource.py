"""`SimulatedSiroApiResource`: the Siro API resource served by the in-process simulator.

The one module of the simulator that knows Dagster: the component picks this class when
its `api.simulator` attribute is on (the demo, `make dev`, the tests), so the production
`SiroApiResource` carries no simulator settings and loading a production `defs.yaml`
imports nothing from this package.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache

from pydantic import Field

from ..api_client.timestamps import parse_ts
from ..pipeline.resources import SiroApiResource
from .clock import FixedClock, WallClock
from .api import SimulatorApi
from .transport import SimulatorTransport
from .world import World, WorldConfig

SIMULATOR_TOKEN = "simulator-token"


@lru_cache(maxsize=8)
def _simulated_world(seed: int, recordings_per_day: int, start_date: str) -> World:
    # Cached so the world's per-day generation cache survives across clients in a process.
    return World(
        WorldConfig(seed=seed, recordings_per_day=recordings_per_day, start_date=date.fromisoformat(start_date))
    )


class SimulatedSiroApiResource(SiroApiResource):
    """Siro's API as the deterministic in-process simulator: same client, pacing and
    retries as production; only the transport and the clock differ."""

    simulator_seed: int = 7
    simulator_recordings_per_day: int = 40
    simulator_start_date: str = "2026-01-01"
    simulator_now: str | None = Field(
        default=None,
        description="Freeze the simulator clock at this ISO timestamp (tests); wall clock if unset.",
    )
    simulator_page_size_cap: int = 100
    simulator_fault_script: list[str] = Field(
        default_factory=list,
        description="Faults the simulator serves first, in order (e.g. 429, 500, truncate).",
    )

    def simulator_api(self) -> SimulatorApi:
        """The in-process simulator this resource talks to."""
        world = _simulated_world(self.simulator_seed, self.simulator_recordings_per_day, self.simulator_start_date)
        clock = FixedClock(parse_ts(self.simulator_now)) if self.simulator_now else WallClock()
        api = SimulatorApi(world, clock, page_size_cap=self.simulator_page_size_cap)
        if self.simulator_fault_script:
            api.script_faults(list(self.simulator_fault_script))
        return api

    def _connection_args(self) -> tuple[str, str, object]:
        # A configured token is sent to the simulator too, so it exercises the same code
        # path (and the same secrecy) as a real one.
        return self.resolved_token() or SIMULATOR_TOKEN, "http://siro-simulator", SimulatorTransport(self.simulator_api())

    def _shares_budget(self) -> bool:
        # In-process requests cost no real token's budget.
        return False

    def now(self) -> datetime:
        """The simulator's clock: frozen at `simulator_now`, else the wall clock."""
        return parse_ts(self.simulator_now) if self.simulator_now else super().now()
