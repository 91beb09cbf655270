"""`siro/recording_daily_stats`: one row of headline numbers per day."""

# No `from __future__ import annotations`: Dagster inspects the real annotation
# objects of context and resource parameters.
from dagster import AssetExecutionContext, MaterializeResult

from ..partitions import dates_in_range
from ..resources import WarehouseResource
from ..transforms import RECORDING_DAILY_STATS
from .derived_factory import derived_asset, materialize_derived

# Numbers the UI plots per partition (Dagster charts numeric metadata over time).
PLOTTED = ("recordings", "deleted", "purged", "linked_share", "summarised_share",
           "extraction_count", "mean_duration_ms")


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
    A one-day materialization also carries these numbers as metadata, so the asset's
    page in the UI plots them day by day.
    """
    result = materialize_derived(context, warehouse, RECORDING_DAILY_STATS)
    days = dates_in_range(context.partition_key_range)
    if len(days) != 1:
        # One result's metadata is stamped on every partition of a ranged run, so
        # per-day numbers would be wrong for all but one of them.
        return result
    with warehouse.read_connection() as con:
        row = con.execute(
            f"SELECT {', '.join(PLOTTED)} FROM {RECORDING_DAILY_STATS.qualified_name} "
            "WHERE partition_date = ?",
            [days[0]],
        ).fetchone()
    plotted = {name: value for name, value in zip(PLOTTED, row or (None,) * len(PLOTTED), strict=True) if value is not None}
    return MaterializeResult(metadata={**result.metadata, **plotted})
