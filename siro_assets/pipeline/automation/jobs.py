"""The partitioned job the schedule, the sensor and backfills all run."""

from __future__ import annotations

from dagster import AssetSelection, Backoff, Jitter, RetryPolicy, define_asset_job

from ..ingest.recordings import RECORDINGS_KEY

# The raw table and everything derived from it: rematerializing a day of raw rows
# always refreshes that day downstream too, so derived tables never go stale.
# Only siro/* assets: a user's code location that merges these Definitions with its own
# downstream assets (other partitions, other storage) must not pull them into this job.
recordings_pipeline_selection = AssetSelection.assets(RECORDINGS_KEY).downstream() & AssetSelection.key_prefixes(
    RECORDINGS_KEY.path[0]
)

# A step that fails (Siro still down after the client's own ~60 s of retries) is tried
# again inside the run after ~20 s and then ~40 s. Dagster's run retries (dagster.yaml)
# start again at once, so this is the only pause between attempts within one request;
# beyond it, the sensor's pending days request the day again with a growing pause
# (docs/SENSOR.md), which is what makes an hour-long outage lose nothing.
STEP_RETRY_POLICY = RetryPolicy(max_retries=2, delay=20, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)

recordings_job = define_asset_job(
    name="siro_recordings_job",
    selection=recordings_pipeline_selection,
    description="Pull one or more days of Siro recordings and rebuild every table derived from them.",
    op_retry_policy=STEP_RETRY_POLICY,
)

# The run tags that make one run cover a range of partitions; Dagster's own single-run
# backfills set the same pair. Not exported by `dagster`'s public API, hence spelled here.
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
