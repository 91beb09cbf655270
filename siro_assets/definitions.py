"""Everything Dagster loads, assembled in one place."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from .assets.derived import derived_assets
from .assets.raw import recordings
from .checks import asset_checks
from .jobs import recordings_job
from .resources import build_resources_from_env
from .schedules import nightly_recordings_schedule
from .sensors import recordings_updated_sensor

defs = Definitions(
    assets=[recordings, *derived_assets],
    asset_checks=asset_checks,
    jobs=[recordings_job],
    schedules=[nightly_recordings_schedule],
    sensors=[recordings_updated_sensor],
    resources=build_resources_from_env(),
    # Every step writes the same DuckDB file, which admits one writing process: running
    # a run's steps in one process avoids lock waits between them (and a process spawn
    # per step); concurrency *between* runs is bounded by the `siro_duckdb` pool.
    executor=in_process_executor,
)
