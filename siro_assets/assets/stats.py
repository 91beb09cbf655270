"""`siro/recording_daily_stats`: one row of headline numbers per day."""

# No `from __future__ import annotations`: Dagster inspects the real annotation
# objects of context and resource parameters.
from dagster import AssetExecutionContext, MaterializeResult

from ..resources import WarehouseResource
from ..transforms import RECORDING_DAILY_STATS
from .derived_factory import derived_asset, materialize_derived


@derived_asset(RECORDING_DAILY_STATS)
def recording_daily_stats(context: AssetExecutionContext, warehouse: WarehouseResource) -> MaterializeResult:
    """One row per day (UTC day of `createdAt`), built from `siro.recordings` for plotting.

    Table `siro.recording_daily_stats`, unique on `partition_date` (joins
    `siro.recordings.partition_date`). `recordings` counts every recording created that
    day, `deleted` and `purged` those flagged (a recording may be both), and
    `active_recordings` those that are neither. Over the active ones: `linked_share`
    (with a CRM link), `summarised_share` (at least one summary section), both NULL on a
    day without active recordings; `extraction_count` (entity extractions, not mapping
    rows) and `mean_duration_ms`. A day with no recordings has a row of zeros.
    """
    return materialize_derived(context, warehouse, RECORDING_DAILY_STATS)
