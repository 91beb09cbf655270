"""Helpers shared by the integration and end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone

from siro_assets.pipeline.automation.dagster_gaps import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from siro_assets.simulator.resource import SimulatedSiroApiResource
from siro_assets.simulator import FixedClock, SimulatorApi, World
from siro_assets.simulator.server import run_in_thread

# A frozen simulator clock well past the days the tests materialize, so those days are
# complete; tests that need the world to move build a resource with a later clock.
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def simulated_siro(now: datetime = NOW, **overrides) -> SimulatedSiroApiResource:
    """The in-process simulator at a frozen clock, with fast retries and no pacing waits."""
    config = dict(
        simulator_now=now.isoformat().replace("+00:00", "Z"),
        requests_per_minute=1_000_000,
        initial_backoff_seconds=0.0,
    )
    config.update(overrides)
    return SimulatedSiroApiResource(**config)


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """Run tags that make one run cover a partition range (what single-run backfills set);
    `materialize()` has no partition-range argument."""
    return {PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last}


@contextmanager
def http_simulator(token: str, now: datetime = NOW) -> Iterator[str]:
    """The simulator as an HTTP server on 127.0.0.1 at a frozen clock; yields its base URL."""
    base_url, stop = run_in_thread(SimulatorApi(World(), FixedClock(now), token=token))
    try:
        yield base_url
    finally:
        stop()


def sensor_with(page_size: int = 1000, clock=None, **sensor_options):
    """The shipped instance's `updatedAt` sensor with other `sensor:` attributes, as a
    `defs.yaml` would set them (`SensorOptions` fields; `page_size` is `api.page_size`),
    ticking on `clock` (a `TickClock`; default the real clocks)."""
    from tests.default_instance import recordings_job
    from siro_assets.pipeline.automation.sensors import build_updated_sensor
    from siro_assets.pipeline.settings import PipelineSettings, SensorOptions

    settings = PipelineSettings(sensor=SensorOptions(**sensor_options), page_size=page_size)
    if clock is not None:
        settings = replace(settings, clock=clock)
    return build_updated_sensor(settings, recordings_job)
