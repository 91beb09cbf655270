"""The partitioned job the schedule, the sensor and backfills all run."""

from __future__ import annotations

from typing import Any

from dagster import (
    AssetKey,
    AssetSelection,
    Backoff,
    Jitter,
    RetryPolicy,
    define_asset_job,
    in_process_executor,
)

from ...transforms import DERIVED_TABLES
from ..settings import PipelineSettings


def pipeline_selection(settings: PipelineSettings) -> AssetSelection:
    """The raw table and everything derived from it: rematerializing a day of raw rows
    always refreshes that day downstream too, so derived tables never go stale. Only
    this instance's assets: a user's downstream assets (other partitions, other
    storage) and another organization's are never pulled into its job."""
    recordings_key = settings.key("recordings")
    return AssetSelection.assets(recordings_key).downstream() & AssetSelection.key_prefixes(settings.key_prefix)


def pipeline_asset_keys(settings: PipelineSettings) -> list[AssetKey]:
    """The assets of `pipeline_selection`, named without an asset graph (a sensor that
    subsets the job names them; tests keep the two equal)."""
    return [settings.key("recordings"), *(settings.key(table.name) for table in DERIVED_TABLES),
            settings.key("crm_writebacks")]


# A step that fails (Siro still down after the client's own ~60 s of retries) is tried
# again inside the run after ~20 s and then ~40 s. Dagster's run retries (dagster.yaml)
# start again at once, so this is the only pause between attempts within one request;
# beyond it, the sensor's pending days request the day again with a growing pause
# (docs/SENSOR.md), which is what makes an hour-long outage lose nothing.
STEP_RETRY_POLICY = RetryPolicy(max_retries=2, delay=20, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)



def build_recordings_job(settings: PipelineSettings) -> Any:
    """The partitioned job the schedule, the sensor and backfills of one instance run."""
    return define_asset_job(
        name=settings.recordings_job_name,
        selection=pipeline_selection(settings),
        description="Pull one or more days of Siro recordings and rebuild every table derived from them.",
        op_retry_policy=STEP_RETRY_POLICY,
        # The executor belongs to the job, not the code location (which a user's project
        # owns): every step writes the same DuckDB file, which admits one writing process,
        # so one process per run avoids lock waits between steps (and a spawn per step);
        # concurrency *between* runs is bounded by the instance's warehouse pool.
        executor_def=in_process_executor,
    )
