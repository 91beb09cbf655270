"""The partitioned job the schedule, the sensor and backfills all run."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from ..ingest.recordings import RECORDINGS_KEY

# The raw table and everything derived from it: rematerializing a day of raw rows
# always refreshes that day downstream too, so derived tables never go stale.
recordings_pipeline_selection = AssetSelection.assets(RECORDINGS_KEY).downstream()

recordings_job = define_asset_job(
    name="siro_recordings_job",
    selection=recordings_pipeline_selection,
    description="Pull one or more days of Siro recordings and rebuild every table derived from them.",
)

# The run tags that make one run cover a range of partitions; Dagster's own single-run
# backfills set the same pair. Not exported by `dagster`'s public API, hence spelled here.
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
